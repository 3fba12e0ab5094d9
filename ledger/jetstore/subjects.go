package jetstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// SubjectsMetadata is the LEDGER stream metadata key that says how the store names its event
// subjects. A stream this build creates records SubjectsPartitioned; a stream created earlier
// records nothing and keeps account subjects for ever (an account's version checks are per
// subject, so its events cannot move to another one).
const SubjectsMetadata = "creditledger_event_subjects"

// SubjectsPartitioned is SubjectsMetadata's value for events stored under
// ledger.events.<p>.<account_id>: one partition's events are then one subject filter
// (ledger.events.<p>.*), which a node taking a partition over reads without the others'.
const SubjectsPartitioned = "partition"

// PartitionedSubjectsAll is what a stream with partitioned subjects captures instead of
// SubjectAll: exactly two tokens after ledger.events, so that a publish on an account subject
// (ledger.events.<account_id>, what an older build writes) is captured by no stream and fails,
// and an older build refuses to open the stream (it requires SubjectAll).
const PartitionedSubjectsAll = "ledger.events.*.*"

// Subjects names a store's event subjects: ledger.events.<account_id> in a store created before
// partitioned subjects, ledger.events.<p>.<account_id> (p = ledger.PartitionOf) in one created
// since. In both, an account's events are one subject (Of, also their filter) and the account id
// is the subject's last token.
type Subjects struct {
	// Partitions is the store's partition count.
	Partitions int
	// Partitioned is true when the subject carries the account's partition.
	Partitioned bool
}

// SubjectsOf reads a LEDGER stream config's subject scheme (with its partition count).
func SubjectsOf(c jetstream.StreamConfig) (Subjects, error) {
	n, err := Partitions(c)
	if err != nil {
		return Subjects{}, err
	}
	switch v, ok := c.Metadata[SubjectsMetadata]; {
	case !ok:
		return Subjects{Partitions: n}, nil
	case v == SubjectsPartitioned:
		return Subjects{Partitions: n, Partitioned: true}, nil
	default:
		return Subjects{}, fmt.Errorf("stream %s metadata %s=%q: this build knows only %q", StreamName, SubjectsMetadata, v, SubjectsPartitioned)
	}
}

// Of is the subject of an account's events.
func (s Subjects) Of(accountID string) string {
	if !s.Partitioned {
		return SubjectPrefix + accountID
	}
	// One allocation, as the account subject's concatenation: Of runs for every appended record.
	var b strings.Builder
	b.Grow(len(SubjectPrefix) + 5 + len(accountID))
	b.WriteString(SubjectPrefix)
	b.WriteString(strconv.Itoa(ledger.PartitionOf(accountID, s.Partitions))) // below 100: no allocation
	b.WriteByte('.')
	b.WriteString(accountID)
	return b.String()
}

// PartitionFilter is the subject filter of partition p's events, or "" when the store's
// subjects do not carry partitions (its events are then only readable together).
func (s Subjects) PartitionFilter(p int) string {
	if !s.Partitioned {
		return ""
	}
	return SubjectPrefix + strconv.Itoa(p) + ".*"
}

// AccountOf is the account an event subject of this store files its message under; false for a
// subject that is not one of its event subjects, including a partitioned subject whose partition
// is not its account's (a message there is foreign: the account's owner never reads it).
func (s Subjects) AccountOf(subject string) (string, bool) {
	e, ok := ParseEventSubject(subject)
	if !ok || e.Partitioned != s.Partitioned || (e.Partitioned && e.Partition != ledger.PartitionOf(e.AccountID, s.Partitions)) {
		return "", false
	}
	return e.AccountID, true
}

// capturesAccountSubjects reports whether a stream subject matches some account subject
// ledger.events.<account_id> (three tokens, the first two literal).
func capturesAccountSubjects(subject string) bool {
	want := []string{"ledger", "events"}
	toks := strings.Split(subject, ".")
	for i, tok := range toks {
		switch {
		case tok == ">":
			return i <= 2
		case i > 2:
			return false
		case tok == "*" || i == 2:
		case tok != want[i]:
			return false
		}
	}
	return len(toks) == 3
}

// EventSubject is an event subject taken apart.
type EventSubject struct {
	AccountID string
	// Partitioned is true for ledger.events.<p>.<account_id>, false for ledger.events.<account_id>.
	Partitioned bool
	// Partition is p (0 when not Partitioned).
	Partition int
}

// ParseEventSubject takes an event subject of either scheme apart: ledger.events.<account_id>, or
// ledger.events.<p>.<account_id> with p written in decimal without sign or leading zeros. It
// does not check that p is the account's partition (that needs the store's partition count:
// Subjects.AccountOf); it is for readers that check every message against its subject themselves.
func ParseEventSubject(subject string) (EventSubject, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok || rest == "" {
		return EventSubject{}, false
	}
	p, acct, partitioned := strings.Cut(rest, ".")
	if !partitioned {
		return EventSubject{AccountID: rest}, true
	}
	n, err := strconv.Atoi(p)
	if err != nil || acct == "" || strings.Contains(acct, ".") || strconv.Itoa(n) != p || n < 0 || n >= ledger.MaxPartitions {
		return EventSubject{}, false
	}
	return EventSubject{AccountID: acct, Partitioned: true, Partition: n}, true
}

// DefaultSubjects are the event subjects of a store this build creates with the default
// partition count.
var DefaultSubjects = Subjects{Partitions: ledger.DefaultPartitions, Partitioned: true}
