package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// runFences is the partition fence's part of the contract: ownership records are stored only
// over the one their writer read, an append that expects a partition's fence is refused as a
// whole once the fence moved, and readers never take an ownership record for an event.
func runFences(t *testing.T, newStore func(t *testing.T) (ledger.Store, Uncertain)) {
	t.Run("a fence write with a stale expectation is refused, all or nothing", func(t *testing.T) { staleFenceWrite(t, newStore) })
	t.Run("an append with a stale fence is refused as a whole", func(t *testing.T) { staleFenceAppend(t, newStore) })
	t.Run("after a new fence the old owner's append fails and the new owner's lands", func(t *testing.T) { takeover(t, newStore) })
	t.Run("ownership records are not events", func(t *testing.T) { fencesAreNotEvents(t, newStore) })
	t.Run("a record cannot carry both checks", func(t *testing.T) { bothChecks(t, newStore) })
	t.Run("fence heads of several partitions are read together, after every fence written", func(t *testing.T) { fenceHeads(t, newStore) })
}

func claim(p int, owner string, lease, expect uint64) ledger.FenceClaim {
	return ledger.FenceClaim{Expect: expect, Fence: ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: lease, Owner: owner,
		Partition: p, Partitions: 4, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
}

// fenced is account's record tag at version, carrying partition p's fence check instead of a
// version check.
func fenced(account, tag string, version uint64, p int, fence uint64) ledger.Record {
	r := at(account, tag, version)
	r.CheckFence, r.FencePartition, r.FenceHead = true, p, fence
	return r
}

func fenceHead(t *testing.T, st ledger.Store, p int) uint64 {
	t.Helper()
	h, err := st.FenceHeads(context.Background(), []int{p})
	require.NoError(t, err)
	require.Len(t, h, 1)
	return h[0]
}

func staleFenceWrite(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	assert.Zero(t, fenceHead(t, st, 0), "no fence yet")
	pos, err := st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-a", 1, 0), claim(1, "node-a", 2, 0)})
	require.NoError(t, err)
	require.Len(t, pos, 2)
	assert.Equal(t, pos[0], fenceHead(t, st, 0))
	assert.Equal(t, pos[1], fenceHead(t, st, 1))
	// Two would-be owners read the same head; only the first fences.
	_, err = st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-b", 3, pos[0])})
	require.NoError(t, err)
	_, err = st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-c", 4, pos[0])})
	require.ErrorIs(t, err, ledger.ErrConflict)
	// One stale claim refuses its fresh neighbour too.
	before := fenceHead(t, st, 1)
	_, err = st.Fence(ctx, []ledger.FenceClaim{claim(1, "node-c", 5, before), claim(0, "node-c", 5, pos[0])})
	require.ErrorIs(t, err, ledger.ErrConflict)
	assert.Equal(t, before, fenceHead(t, st, 1), "nothing of a refused fence write is stored")
}

func staleFenceAppend(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	f, err := st.Fence(ctx, []ledger.FenceClaim{claim(2, "node-a", 1, 0)})
	require.NoError(t, err)
	_, err = st.Fence(ctx, []ledger.FenceClaim{claim(2, "node-b", 2, f[0])})
	require.NoError(t, err)
	// The fence rides on a's second record; b's own version check passes: the fence alone refuses.
	_, err = st.Append(ctx, []ledger.Record{first("a", "a1", 0), fenced("a", "a2", 2, 2, f[0]), first("b", "b1", 0)})
	require.ErrorIs(t, err, ledger.ErrConflict)
	for _, id := range []string{"a", "b"} {
		assert.Empty(t, readAccount(t, st, id, 0), "nothing of a fenced append is stored (%s)", id)
	}
}

func takeover(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	old, err := st.Fence(ctx, []ledger.FenceClaim{claim(3, "node-a", 1, 0)})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{fenced("acct", "by-a", 1, 3, old[0])})
	require.NoError(t, err, "the owner's append carries its fence")
	v := accountVersion(t, st, "acct")
	require.Equal(t, uint64(1), v, "a fenced record counts in its account's version")
	// b takes partition 3 over: it fences over a's record.
	cur, err := st.Fence(ctx, []ledger.FenceClaim{claim(3, "node-b", 2, old[0])})
	require.NoError(t, err)
	// a, unaware, appends at the account's true version: the fence alone refuses it.
	_, err = st.Append(ctx, []ledger.Record{first("acct", "late-a", v), fenced("acct", "late-a2", v+2, 3, old[0])})
	require.ErrorIs(t, err, ledger.ErrConflict)
	pos, err := st.Append(ctx, []ledger.Record{first("acct", "by-b", v), fenced("acct", "by-b2", v+2, 3, cur[0])})
	require.NoError(t, err, "the new owner appends under its fence")
	recs := readAccount(t, st, "acct", 0)
	assert.Equal(t, []string{"by-a", "by-b", "by-b2"}, tags(t, recs), "one chain, the old owner's late append absent")
	assert.Equal(t, pos[1], recs[2].Position)
}

func fencesAreNotEvents(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	p1, err := st.Append(ctx, []ledger.Record{first("a", "a1", 0)})
	require.NoError(t, err)
	f, err := st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-a", 1, 0)})
	require.NoError(t, err)
	assert.Greater(t, f[0], p1[0], "ownership records share the total order")
	_, err = st.ReadAt(ctx, f[0])
	require.ErrorIs(t, err, ledger.ErrNoRecord, "an ownership record is not an event")
	// The head is now an ownership record: a read still ends, and reports it.
	var seen []ledger.Record
	head, err := st.Read(ctx, 1, func(r ledger.Record) error {
		seen = append(seen, r)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a1"}, tags(t, seen))
	assert.Equal(t, f[0], head)
	head, err = st.Read(ctx, f[0], func(r ledger.Record) error {
		t.Errorf("read an ownership record as an event at %d", r.Position)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, f[0], head)
}

func bothChecks(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	r := fenced("a", "a1", 1, 0, 0)
	r.CheckVersion = true
	_, err := st.Append(context.Background(), []ledger.Record{r})
	require.ErrorIs(t, err, ledger.ErrBothChecks)
}

func fenceHeads(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	heads := func(ps ...int) []uint64 {
		t.Helper()
		h, err := st.FenceHeads(ctx, ps)
		require.NoError(t, err)
		require.Len(t, h, len(ps), "one head per partition asked")
		return h
	}
	assert.Empty(t, heads(), "nothing asked, nothing read")
	assert.Equal(t, []uint64{0, 0}, heads(0, 3), "no partition fenced yet")
	a, err := st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-a", 1, 0), claim(2, "node-a", 1, 0)})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{fenced("acct", "by-a", 1, 0, a[0])})
	require.NoError(t, err)
	assert.Equal(t, []uint64{a[1], 0, a[0], a[1]}, heads(2, 3, 0, 2), "in the order asked; an event is no ownership record")
	// b takes partition 0 over: the very next read sees its record, not a's.
	b, err := st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-b", 2, a[0])})
	require.NoError(t, err)
	assert.Equal(t, []uint64{b[0], a[1]}, heads(0, 2))
	for i := 0; i < 10; i++ {
		prev := b[0]
		b, err = st.Fence(ctx, []ledger.FenceClaim{claim(0, "node-b", uint64(3+i), prev)})
		require.NoError(t, err)
		require.Equal(t, []uint64{b[0], a[1], 0}, heads(0, 2, 1), "read after fence write %d", i)
	}
}
