package jetstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/creditledger/creditledger/ledger"
)

// PartitionsApart reports whether the store's subjects carry partitions, so that ReadPartitions
// reads one partition's events without the others' (a store created before partitioned subjects
// reads every event and passes on the partitions' own).
func (s *Store) PartitionsApart() bool { return s.subjects.Partitioned }

// ReadPartitions calls fn for every event of an account in partitions ps (of n, which must be the
// store's count) from position from up to the stream's head at the time of the call, which it
// returns. With partitioned subjects, direct gets allowed and at most an eighth of the partitions
// asked for, it reads one partition after another, each with direct gets on ledger.events.<p>.*:
// the other partitions' messages are never sent. Otherwise it reads the stream once and passes on
// the partitions' own. Each partition's events come in position order; partitions may follow one
// another (ledger.PartitionReader). Ownership records are not read.
func (s *Store) ReadPartitions(ctx context.Context, from uint64, n int, ps []int, fn func(ledger.Record) error) (uint64, error) {
	if n != s.partitions {
		return 0, fmt.Errorf("read partitions among %d: the store has %d", n, s.partitions)
	}
	want := make([]bool, n)
	var list []int
	for _, p := range ps {
		if p < 0 || p >= n {
			return 0, fmt.Errorf("read partition %d: the store has %d", p, n)
		}
		if !want[p] {
			want[p] = true
			list = append(list, p)
		}
	}
	// Without allow_direct nobody answers a direct get (ReadAccountDirect and the fence heads
	// read such a stream another way too): the stream is read once.
	direct := s.stream.CachedInfo().Config.AllowDirect
	if !s.subjects.Partitioned || len(list)*ledger.PartitionReadShare > n || !direct {
		return s.Read(ctx, from, func(r ledger.Record) error {
			if !want[ledger.PartitionOf(r.AccountID, n)] {
				return nil
			}
			return fn(r)
		})
	}
	head, err := s.Head(ctx)
	if err != nil {
		return 0, err
	}
	from = max(from, 1)
	if head < from {
		return head, nil
	}
	slices.Sort(list)
	for _, p := range list {
		if err := s.readPartition(ctx, from, head, p, fn); err != nil {
			return head, fmt.Errorf("partition %d: %w", p, err)
		}
	}
	return head, nil
}

// readPartition reads partition p's events from position from up to head with batched direct
// gets on its subjects (ledger.events.<p>.*), up to the partition's last event as the stream's
// leader has it. No consumer is made: a consumer made for each partition missed its first pull
// in 2 of 24 reads here and waited 2 s for its heartbeat to tell.
func (s *Store) readPartition(ctx context.Context, from, head uint64, p int, fn func(ledger.Record) error) error {
	filter := s.subjects.PartitionFilter(p)
	last, _, err := leaderLast(ctx, s.nc, StreamName, filter)
	if err != nil {
		return fmt.Errorf("last event: %w", err)
	}
	last = min(last, head)
	if last < from {
		return nil // nothing of the partition from that position on
	}
	var failed error
	err = s.readFilterDirect(ctx, StreamName, filter, from, last, func(pos uint64, subject string, data []byte) {
		acct, ok := s.subjects.AccountOf(subject)
		if failed != nil || !ok || ledger.PartitionOf(acct, s.partitions) != p {
			return // not this partition's event (the server would not send one)
		}
		failed = fn(ledger.Record{AccountID: acct, Data: data, Position: pos})
	})
	if err == nil {
		err = failed
	}
	return err
}
