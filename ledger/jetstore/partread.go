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

// ReadPartitions calls fn for every event of an account in partitions ps (of n, which must be the
// store's count) from position from up to the stream's head at the time of the call, which it
// returns. With partitioned subjects it reads through one consumer filtered on the partitions'
// subjects (ledger.events.<p>.*): nats-server's per-subject index spares it the other partitions'
// messages (a third of a 200,000-message stream read in 0.25 s, the whole in 0.57 s). Ownership
// records are not read: fn is not called for them anyway.
func (s *Store) ReadPartitions(ctx context.Context, from uint64, n int, ps []int, fn func(ledger.Record) error) (uint64, error) {
	if n != s.partitions {
		return 0, fmt.Errorf("read partitions among %d: the store has %d", n, s.partitions)
	}
	want := make([]bool, n)
	var filters []string
	for _, p := range ps {
		if p < 0 || p >= n {
			return 0, fmt.Errorf("read partition %d: the store has %d", p, n)
		}
		if !want[p] {
			want[p] = true
			filters = append(filters, s.subjects.PartitionFilter(p))
		}
	}
	if !s.subjects.Partitioned || len(filters) == n {
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
	if head < from || len(filters) == 0 {
		return head, nil
	}
	slices.Sort(filters)
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return head, fmt.Errorf("ordered consumer: %w", err)
	}
	defer s.deleteConsumer(cons)
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return head, nil // nothing of these partitions from that position on
	}
	return head, s.consumeWith(ctx, cons, head, fn)
}
