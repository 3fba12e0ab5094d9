package writer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// missedEvent writes the history both tests below read: a partition-1 snapshot that misses an
// event of acct (an intruder appended c3 below its head), then c5 on acct; upto is the position
// of c5, after which c6 (on other) and c7 (on acct) follow.
func missedEvent(t *testing.T, prefix string) (st *memstore.Store, snaps *snapStore, acct, other string, upto uint64) {
	t.Helper()
	st, snaps = memstore.New(), &snapStore{}
	ids := accountsIn(1, 2, prefix)
	acct, other = ids[0], ids[1]
	w1, _ := partWriter(t, st, snaps, 1)
	stop1 := run(t, w1)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c1", acct, "L1")).Err)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c2", other, "L2")).Err)
	intruder, _ := partWriter(t, st, nil) // believes it owns everything
	stopI := run(t, intruder)
	require.Nil(t, send(t, intruder, "activate_license", map[string]any{"command_id": "c3", "account_id": acct, "license_id": "L1"}).Err)
	require.Nil(t, send(t, w1, "activate_license", map[string]any{"command_id": "c4", "account_id": other, "license_id": "L2"}).Err)
	stop1() // its snapshot of partition 1 misses c3
	allocate := func(cmd, id string) {
		require.Nil(t, send(t, intruder, "allocate_credits", map[string]any{"command_id": cmd, "account_id": id, "feature": "file_security", "credits": "1"}).Err)
	}
	allocate("c5", acct)
	upto, err := st.Read(context.Background(), 1, func(ledger.Record) error { return nil })
	require.NoError(t, err)
	require.Nil(t, send(t, intruder, "purchase_license", buyL("c6", other, "L3")).Err)
	allocate("c7", acct)
	stopI()
	return st, snaps, acct, other, upto
}

// partitionOneWriter is a writer of partition 1 over st (not loaded).
func partitionOneWriter(t *testing.T, st ledger.Store, snaps writer.SnapshotStore) *writer.Writer {
	t.Helper()
	o := partOwner{n: testParts, held: map[int]bool{1: true}}
	w, err := writer.New(writer.Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()),
		Log: zerolog.Nop(), Clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, SweepInterval: time.Hour,
		NewID: uuid.NewString, Partitions: writer.Partitions{Count: testParts, Held: []int{1}}, Owner: o, Holds: o.holds, Snapshots: snaps})
	require.NoError(t, err)
	return w
}

// sameAsReplay checks that w holds what a full replay of st holds, and decides for acct and other.
func sameAsReplay(t *testing.T, st *memstore.Store, w *writer.Writer, acct, other string) {
	t.Helper()
	head, err := st.Read(context.Background(), 1, func(ledger.Record) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, head, w.Head())
	replay, _ := partWriter(t, st, nil, 1)
	assert.Equal(t, states(replay), states(w), "the events only the leader held are folded once each")
	stop := run(t, w)
	defer stop()
	for _, id := range []string{acct, other} {
		res := send(t, w, "allocate_credits", map[string]any{"command_id": "c8-" + id, "account_id": id, "feature": "file_security", "credits": "1"})
		assert.Nil(t, res.Err, "%s: not history_broken", id)
	}
}

// laggingReplica is a store whose nearest replica holds the stream up to position upto only
// (ledger.NearReader): the leader (Read, ReadAccount) holds it all.
type laggingReplica struct {
	*memstore.Store
	upto uint64
}

func (s laggingReplica) ReadNear(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	head, err := s.Read(ctx, from, func(r ledger.Record) error {
		if r.Position > s.upto {
			return nil
		}
		return fn(r)
	})
	return min(head, s.upto), err
}

// A takeover's writer preloaded from a replica that lags the leader, whose snapshot missed an
// event of one of its accounts (another node appended to it below the snapshot's head), holds
// after CatchUp what a writer loaded from the leader holds: the re-read of that account, from the
// leader, past the replica's last position, neither moves the writer's head past the other
// accounts' events the replica did not have (CatchUp would start after them) nor folds the
// account's own events twice (its history would be called broken).
func TestPreloadFromALaggingReplicaWithAMissedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, snaps, acct, other, upto := missedEvent(t, "nl") // the replica's last position: c5
	w2 := partitionOneWriter(t, laggingReplica{Store: st, upto: upto}, snaps)
	require.NoError(t, w2.Preload(ctx))
	require.NoError(t, w2.CatchUp(ctx))
	sameAsReplay(t, st, w2, acct, other)
}

// countedReads is a store that keeps partitions apart and counts its near reads and its reads
// of partitions apart.
type countedReads struct {
	*memstore.Store
	near, apart *int
}

func (s countedReads) ReadNear(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	*s.near++
	return s.Store.ReadNear(ctx, from, fn)
}

func (s countedReads) ReadPartitions(ctx context.Context, from uint64, n int, ps []int, fn func(ledger.Record) error) (uint64, error) {
	*s.apart++
	return s.Store.ReadPartitions(ctx, from, n, ps, fn)
}

// On a store that keeps partitions apart (the JetStream store's partitioned subjects), a writer
// of a share of the partitions larger than ledger.PartitionReadShare preloads from the nearest
// replica, and folds only its partitions' accounts, as a load from the leader does; a smaller
// share is read apart, from the leader. (Preload first read apart stores only from the leader:
// a cluster node's takeover, which holds some partitions, never read near.)
func TestPreloadOfAPartitionShareReadsNear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memstore.New()
	st.KeepPartitionsApart()
	all, _ := partWriter(t, st, nil)
	stop := run(t, all)
	for p := 0; p < testParts; p++ {
		for i, id := range accountsIn(p, 2, "sh") {
			require.Nil(t, send(t, all, "purchase_license", buyL(fmt.Sprintf("c-%d-%d", p, i), id, fmt.Sprintf("L-%d-%d", p, i))).Err)
		}
	}
	stop()

	preload := func(n int, held ...int) (w *writer.Writer, near, apart int) {
		o := partOwner{n: n, held: map[int]bool{}}
		for _, p := range held {
			o.held[p] = true
		}
		w, err := writer.New(writer.Options{Store: countedReads{Store: st, near: &near, apart: &apart}, Rules: ledger.NewRules(ledger.DefaultCatalogue()),
			Log: zerolog.Nop(), Clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, SweepInterval: time.Hour,
			NewID: uuid.NewString, Partitions: writer.Partitions{Count: n, Held: held}, Owner: o, Holds: o.holds})
		require.NoError(t, err)
		require.NoError(t, w.Preload(ctx))
		preNear, preApart := near, apart
		require.NoError(t, w.CatchUp(ctx)) // from the leader (apart), whatever the preload read
		return w, preNear, preApart
	}
	w, near, apart := preload(testParts, 1, 2)
	assert.Equal(t, 1, near, "half the partitions: read near")
	assert.Zero(t, apart)
	loaded, _ := partWriter(t, st, nil, 1, 2)
	assert.Equal(t, statesOf(loaded, 1, 2), states(w), "its partitions' accounts only, as a load has them")
	assert.Len(t, states(w), 4)

	_, near, apart = preload(8*ledger.PartitionReadShare, 1)
	assert.Zero(t, near, "an eighth of the partitions or less: read apart")
	assert.Equal(t, 1, apart)
}

// movingLeader is a store whose first Read ends at position upto, as a read from the leader ends
// at the head it took when it began while another writer of the node goes on appending (a
// takeover's Load beside the running writer); later reads, and ReadAccount, see it all.
type movingLeader struct {
	*memstore.Store
	upto  uint64
	reads *int
}

func (s movingLeader) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	*s.reads++
	if *s.reads > 1 {
		return s.Store.Read(ctx, from, fn)
	}
	head, err := s.Store.Read(ctx, from, func(r ledger.Record) error {
		if r.Position > s.upto {
			return nil
		}
		return fn(r)
	})
	return min(head, s.upto), err
}

// The same snapshot that missed an event, loaded from the leader while the node's running writer
// appends: the load's re-read of that account reaches past the position the load read to, and
// must not move the writer's head past the other accounts' events appended meanwhile (CatchUp
// would start after them), nor have CatchUp fold the account's own later events again.
func TestLoadBesideAnAppendingWriterWithAMissedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, snaps, acct, other, upto := missedEvent(t, "ml") // the load reads up to c5
	reads := 0
	w2 := partitionOneWriter(t, movingLeader{Store: st, upto: upto, reads: &reads}, snaps)
	require.NoError(t, w2.Load(ctx))
	require.NoError(t, w2.CatchUp(ctx))
	sameAsReplay(t, st, w2, acct, other)
}
