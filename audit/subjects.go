package audit

import (
	"fmt"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// subjectCheck checks an event against its own subject (docs/FORMAT.md §3): the subject must be
// where the store files the envelope's account. With the store's subjects known (the stream's
// config: jetstore.SubjectsOf) that is exactly Subjects.Of(account): the store's scheme, and in a
// partitioned store the account's partition. Without them (stored lines alone) the subject must
// name the account in either scheme, and every event must use the scheme of the first: a stream
// captures one scheme only.
type subjectCheck struct {
	store jetstore.Subjects
	known bool
	// seen and partitioned are the first event subject's scheme, when the store's is unknown.
	seen        bool
	partitioned bool
}

// set makes the store's subjects known.
func (s *subjectCheck) set(store jetstore.Subjects) { s.store, s.known = store, true }

// check says why subject is not where the store files accountID's events ("" when it is).
func (s *subjectCheck) check(subject, accountID string) string {
	if s.known {
		want := s.store.Of(accountID)
		if subject == want {
			return ""
		}
		return fmt.Sprintf("event of account %q is stored under subject %q, not the account's subject %q (%s)",
			accountID, subject, want, describeSubjects(s.store, accountID))
	}
	e, ok := jetstore.ParseEventSubject(subject)
	if !ok || e.AccountID != accountID || accountID == "" {
		return fmt.Sprintf("event of account %q is stored under subject %q", accountID, subject)
	}
	if !s.seen {
		s.seen, s.partitioned = true, e.Partitioned
		return ""
	}
	if e.Partitioned != s.partitioned {
		return fmt.Sprintf("event of account %q is stored under subject %q, but the stream's first event subject is %s: a store uses one scheme",
			accountID, subject, schemeName(s.partitioned))
	}
	return ""
}

// describeSubjects says where store files accountID's events, for a finding's reason.
func describeSubjects(store jetstore.Subjects, accountID string) string {
	if !store.Partitioned {
		return "the store files events under account subjects"
	}
	return fmt.Sprintf("the store files events under partitioned subjects; the account's partition is %d of %d",
		ledger.PartitionOf(accountID, store.Partitions), store.Partitions)
}

// schemeName names a subject scheme in a finding's reason.
func schemeName(partitioned bool) string {
	if partitioned {
		return "partitioned (ledger.events.<p>.<account_id>)"
	}
	return "an account subject (ledger.events.<account_id>)"
}
