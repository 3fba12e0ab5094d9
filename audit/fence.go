package audit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// Partition ownership records (docs/FORMAT.md §8). A node that takes a partition over writes
// one on ledger.fence.<p> into the LEDGER stream, between the events: it takes a position and a
// leaf of the log tree like any message, but belongs to no account's chain.

// allSubjects selects every message of the stream in a direct get's next_by_subj: the log tree
// covers events and ownership records alike.
const allSubjects = ">"

// IsFence says whether the message is filed under a fence subject (ledger.fence.*), whatever
// its content: an ownership record, or a foreign message there (see CheckFence).
func (m Message) IsFence() bool { return strings.HasPrefix(m.Subject, jetstore.FencePrefix) }

// fencePartition reads the partition a fence subject names: the decimal number after the
// prefix, in the form jetstore.FenceSubject writes (no sign, no leading zeros).
func fencePartition(subject string) (int, bool) {
	s, ok := strings.CutPrefix(subject, jetstore.FencePrefix)
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || strconv.Itoa(p) != s {
		return 0, false
	}
	return p, true
}

// CheckFence reads a message on a fence subject as its partition's ownership record: the stored
// bytes are a record ledger.DecodeFence accepts (RFC 8785 canonical form), naming the partition
// of its subject and, when partitions is not 0, that partition count (the stream's). The error
// says why the message is not one.
func CheckFence(m Message, partitions int) (ledger.Fence, error) {
	p, ok := fencePartition(m.Subject)
	if !ok {
		return ledger.Fence{}, fmt.Errorf("subject %q names no partition", m.Subject)
	}
	f, err := ledger.DecodeFence(m.Data)
	if err != nil {
		return ledger.Fence{}, err
	}
	if f.Partition != p {
		return f, fmt.Errorf("%w: the record of partition %d is stored under subject %q", ledger.ErrMalformedFence, f.Partition, m.Subject)
	}
	if partitions != 0 && f.Partitions != partitions {
		return f, fmt.Errorf("%w: the record counts %d partitions, the stream %d", ledger.ErrMalformedFence, f.Partitions, partitions)
	}
	return f, nil
}

// checkFence is Chain.Apply's check of a message on a fence subject.
func (c *Chain) checkFence(m Message) (Finding, bool) {
	if _, err := CheckFence(m, c.partitions); err != nil {
		c.events++ // not an ownership record: counted with the other messages
		return Finding{Kind: KindForeignFence, Position: m.Position,
			Reason: fmt.Sprintf("message on %s is not a partition ownership record: %v", m.Subject, err)}, false
	}
	c.fences++
	return Finding{}, true
}
