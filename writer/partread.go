package writer

import (
	"context"

	"github.com/creditledger/creditledger/ledger"
)

// apartReader is the store as a reader of partitions apart, nil when it keeps them together
// (memstore by default, a JetStream store created before partitioned subjects).
func apartReader(st ledger.Store) ledger.PartitionReader {
	if pr, ok := st.(ledger.PartitionReader); ok && pr.PartitionsApart() {
		return pr
	}
	return nil
}

// readHeld reads the store from position from for a load or a catch-up: a writer of some
// partitions of a store that keeps partitions apart reads only theirs (what it takes over costs
// what those partitions hold, not what the stream holds); any other reads every record, and
// folds the others' only for the ids they hold (cache.noteIDs).
func (w *Writer) readHeld(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	if w.apart != nil && w.partitioned() {
		return w.apart.ReadPartitions(ctx, from, w.opts.Partitions.Count, w.heldPartitions(), fn)
	}
	return w.opts.Store.Read(ctx, from, fn)
}

// readNear is readHeld for Preload: it reads without waiting for the leader (ledger.NearReader),
// and may end behind the leader's head, wherever readHeld would read the whole stream; a writer of some
// partitions of a store that keeps them apart gets only its partitions' records, as from
// ReadPartitions. A share small enough to be read apart (ledger.PartitionReadShare) stays with
// the leader: it is read partition by partition, and is short.
func (w *Writer) readNear(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	nr, ok := w.opts.Store.(ledger.NearReader)
	if !ok {
		return w.readHeld(ctx, from, fn)
	}
	if w.apart == nil || !w.partitioned() {
		return nr.ReadNear(ctx, from, fn)
	}
	held, n := w.heldPartitions(), w.opts.Partitions.Count
	if len(held)*ledger.PartitionReadShare <= n {
		return w.readHeld(ctx, from, fn)
	}
	want := make([]bool, n)
	for _, p := range held {
		want[p] = true
	}
	return nr.ReadNear(ctx, from, func(r ledger.Record) error {
		if !want[ledger.PartitionOf(r.AccountID, n)] {
			return nil // another partition's: read apart, it would not have come
		}
		return fn(r)
	})
}
