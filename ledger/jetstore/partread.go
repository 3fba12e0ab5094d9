package jetstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// PartitionsApart reports whether the store's subjects carry partitions, so that ReadPartitions
// reads one partition's events without the others' (a store created before partitioned subjects
// reads every event and passes on the partitions' own).
func (s *Store) PartitionsApart() bool { return s.subjects.Partitioned }

// partitionShare is how small a share of the partitions ReadPartitions reads apart: at most one
// n-th of them (16 of 64), one partition after another. Measured on a three-node cluster here
// (53,000 events of 20,000 accounts in 64 partitions): the whole stream read in 0.26-0.52 s; one
// partition through a consumer filtered on its subjects in 24-29 ms, twelve one after another in
// 0.29 s, but twelve through one consumer with twelve filters in 0.9-1.2 s and forty in 11.5 s
// (nats-server's path for several filters costs more per message the more filters it has). A
// larger share is read whole, its other partitions' events passed over without being decoded.
const partitionShare = 4

// ReadPartitions calls fn for every event of an account in partitions ps (of n, which must be the
// store's count) from position from up to the stream's head at the time of the call, which it
// returns. With partitioned subjects and at most a quarter of the partitions asked for, it reads
// one partition after another, each through a consumer filtered on ledger.events.<p>.*: the other
// partitions' messages are never sent. Otherwise it reads the stream once and passes on the
// partitions' own. Each partition's events come in position order; partitions may follow one
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
	if !s.subjects.Partitioned || len(list)*partitionShare > n {
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

// readPartition reads partition p's events from position from up to head, through one ordered
// consumer filtered on its subjects, deleted afterwards.
func (s *Store) readPartition(ctx context.Context, from, head uint64, p int, fn func(ledger.Record) error) error {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.subjects.PartitionFilter(p)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	defer s.deleteConsumer(cons)
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil // nothing of the partition from that position on
	}
	return s.consumeWith(ctx, cons, head, fn)
}
