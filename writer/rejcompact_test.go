package writer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// rejRig is a rig with a rejection log, and an account "acme" holding 10 active credits.
func rejRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	r.rejections = log
	return r
}

func fundAcme(t *testing.T, w *writer.Writer) {
	t.Helper()
	require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L", "source": "sales", "credits": "10"}).Err)
	require.Nil(t, do(t, w, "activate_license", map[string]any{"command_id": "act", "account_id": "acme", "license_id": "L"}).Err)
}

func bigAllocation(i int) map[string]any {
	return map[string]any{"command_id": fmt.Sprint("big-", i), "account_id": "acme", "feature": "file_security", "credits": "50"}
}

// rejectFive has five allocations beyond acme's balance rejected, then adds the credits that
// would accept them.
func rejectFive(t *testing.T, w *writer.Writer) []writer.Result {
	t.Helper()
	first := make([]writer.Result, 5)
	for i := range first {
		first[i] = do(t, w, "allocate_credits", bigAllocation(i))
		require.NotNil(t, first[i].Err)
		require.Equal(t, ledger.CodeInsufficientCredits, first[i].Err.Code)
	}
	require.Nil(t, do(t, w, "upgrade_contract", map[string]any{"command_id": "up", "account_id": "acme", "license_id": "L", "additional_credits": "1000"}).Err)
	return first
}

// assertReplayed retries the five allocations: each gets its first answer, and nothing is appended.
func assertReplayed(t *testing.T, w *writer.Writer, first []writer.Result) {
	t.Helper()
	head := w.Head()
	for i := range first {
		again := do(t, w, "allocate_credits", bigAllocation(i))
		require.NotNil(t, again.Err, "retry %d must get the first answer, not a fresh decision", i)
		assert.True(t, again.Replayed, "retry %d", i)
		assert.Equal(t, first[i].Err, again.Err, "retry %d", i)
	}
	assert.Equal(t, head, w.Head(), "nothing appended")
}

// TestOlderRejectionsAreReplayed: a writer that remembers two rejections in full still replays
// all five it decided, although the account would accept them now: the three older are read
// back from the rejection log.
func TestOlderRejectionsAreReplayed(t *testing.T) {
	r := rejRig(t)
	w := newWriter(t, r, r.store, writer.Options{Rejections: r.rejections, RejectionsRemembered: 2})
	run(t, w)
	fundAcme(t, w)
	first := rejectFive(t, w)
	assertReplayed(t, w, first)
	assert.Equal(t, uint64(3), w.Stats().RejectionReadBack, "the three pushed out of the full records")
}

// TestCompactRejectionsSurviveASnapshot: after a restart from the snapshot (which moves every
// rejection into the compact form; the log is read only after it), the five are still replayed,
// and the same command_id with another body is a reused key.
func TestCompactRejectionsSurviveASnapshot(t *testing.T) {
	r := rejRig(t)
	o := writer.Options{Rejections: r.rejections, RejectionsRemembered: 2, Snapshots: r.snaps, SnapshotEvery: 1_000_000}
	w1 := newWriter(t, r, r.store, o)
	stop1 := run(t, w1)
	fundAcme(t, w1)
	first := rejectFive(t, w1)
	stop1() // the shutdown snapshot

	w2 := newWriter(t, r, r.store, o)
	run(t, w2)
	assertReplayed(t, w2, first)
	assert.Equal(t, uint64(5), w2.Stats().RejectionReadBack, "all five were compacted by the snapshot")
	head := w2.Head()
	other := do(t, w2, "allocate_credits", map[string]any{"command_id": "big-1", "account_id": "acme", "feature": "file_security", "credits": "5"})
	require.NotNil(t, other.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, other.Err.Code)
	elsewhere := do(t, w2, "allocate_credits", map[string]any{"command_id": "big-2", "account_id": "zeta", "feature": "file_security", "credits": "50"})
	require.NotNil(t, elsewhere.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, elsewhere.Err.Code, "another account")
	assert.Equal(t, head, w2.Head(), "nothing appended")
}

// TestCompactRejectionsLoadedFromTheLog: a writer that starts without a snapshot reads all five
// rejections from the log and keeps the three beyond its bound in compact form, where the log
// read named them.
func TestCompactRejectionsLoadedFromTheLog(t *testing.T) {
	r := rejRig(t)
	w1 := newWriter(t, r, r.store, writer.Options{Rejections: r.rejections})
	stop1 := run(t, w1)
	fundAcme(t, w1)
	first := rejectFive(t, w1)
	stop1()

	w2 := newWriter(t, r, r.store, writer.Options{Rejections: r.rejections, RejectionsRemembered: 2})
	run(t, w2)
	assertReplayed(t, w2, first)
	assert.Equal(t, uint64(3), w2.Stats().RejectionReadBack)
}

// TestUnansweredRejectionIsNotCompacted: a rejection the log refused is answered unavailable and
// forgotten, in full and compact form alike: pushed past the bound by later rejections and
// through a snapshot, its retry is still decided afresh (and accepted, once the credits are there).
func TestUnansweredRejectionIsNotCompacted(t *testing.T) {
	r := rejRig(t)
	fl := &failingLog{RejectionLog: r.rejections}
	o := writer.Options{Rejections: fl, RejectionsRemembered: 1, Snapshots: r.snaps, SnapshotEvery: 1_000_000}
	w1 := newWriter(t, r, r.store, o)
	stop1 := run(t, w1)
	fundAcme(t, w1)
	fl.refusals.Store(1)
	lost := do(t, w1, "allocate_credits", bigAllocation(0))
	require.NotNil(t, lost.Err)
	require.Equal(t, ledger.CodeUnavailable, lost.Err.Code)
	for i := 1; i < 4; i++ {
		require.Equal(t, ledger.CodeInsufficientCredits, do(t, w1, "allocate_credits", bigAllocation(i)).Err.Code)
	}
	require.Nil(t, do(t, w1, "upgrade_contract", map[string]any{"command_id": "up", "account_id": "acme", "license_id": "L", "additional_credits": "1000"}).Err)
	stop1()

	w2 := newWriter(t, r, r.store, o)
	run(t, w2)
	again := do(t, w2, "allocate_credits", bigAllocation(0))
	assert.Nil(t, again.Err, "never answered with a rejection: decided afresh")
	assert.False(t, again.Replayed)
	replayed := do(t, w2, "allocate_credits", bigAllocation(1))
	require.NotNil(t, replayed.Err)
	assert.True(t, replayed.Replayed)
}

// TestCompactRejectionsTravelWithTheirPartition: the guarantee across nodes. Node a holds acme's
// partition and another, remembers two rejections in full, and stops (its partition snapshots);
// node b, holding acme's partition, loads it from a's snapshot of it and still
// replays all five rejections (the rejection log is read only after the snapshot, so b knows
// them only from the snapshot's compact entries). b holds acme's partition alone: a partition
// without a snapshot would have it read the whole log instead.
func TestCompactRejectionsTravelWithTheirPartition(t *testing.T) {
	r := rejRig(t)
	n := r.store.Partitions()
	p := ledger.PartitionOf("acme", n)
	node := func(held ...int) writer.Options {
		o := partOwner{n: n, held: map[int]bool{}}
		for _, h := range held {
			o.held[h] = true
		}
		return writer.Options{Rejections: r.rejections, RejectionsRemembered: 2, Snapshots: r.snaps, SnapshotEvery: 1_000_000,
			Partitions: writer.Partitions{Count: n, Held: held}, Owner: o, Holds: o.holds}
	}
	a := newWriter(t, r, r.store, node(p, (p+1)%n))
	stopA := run(t, a)
	fundAcme(t, a)
	first := rejectFive(t, a)
	stopA() // a's partition snapshots, every rejection in compact form
	own, err := r.snaps.Load(context.Background(), fmt.Sprintf("writer-v5-p%d", p))
	require.NoError(t, err)
	require.NotEmpty(t, own, "acme's partition has a snapshot of its own")

	b := newWriter(t, r, r.store, node(p))
	run(t, b)
	assertReplayed(t, b, first)
	assert.Equal(t, uint64(5), b.Stats().RejectionReadBack, "all five came with acme's partition snapshot")
}
