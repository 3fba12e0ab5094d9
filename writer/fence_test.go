package writer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// fencedOwner owns every partition of a 4-partition store, each under the ownership record
// it fenced at load, until one is found lost (writer.Ownership and writer.Fences).
type fencedOwner struct {
	mu     sync.Mutex
	fences map[int]uint64
	lost   map[int]bool
	losses atomic.Int32
}

func (o *fencedOwner) Owns(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.lost[ledger.PartitionOf(id, 4)]
}
func (o *fencedOwner) OwnsEverything() bool { return false }
func (o *fencedOwner) Fence(id string) (int, uint64, bool) {
	p := ledger.PartitionOf(id, 4)
	o.mu.Lock()
	defer o.mu.Unlock()
	pos, ok := o.fences[p]
	return p, pos, ok
}
func (o *fencedOwner) Lost(p int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lost[p] = true
	o.losses.Add(1)
}

func fenceClaim(p int, owner string, expect uint64) ledger.FenceClaim {
	return ledger.FenceClaim{Expect: expect, Fence: ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 1, Owner: owner,
		Partition: p, Partitions: 4, Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}}
}

// A writer whose partition another node fenced over while it was not looking: its next append
// there is refused by the store even though the account's head did not move, the partition is
// lost to it at once (no retry up to MaxAttempts), the command is redirected to the new owner,
// and the writer's other partitions go on.
func TestFencedAppendLosesThePartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var appends atomic.Int32
	var lastRecs atomic.Pointer[[]ledger.Record]
	st := &writer.MemStore{BeforeAppend: func(recs []ledger.Record) error {
		appends.Add(1)
		lastRecs.Store(&recs)
		return nil
	}}
	const acct, other = "fence-acct", "fence-other-1"
	p := ledger.PartitionOf(acct, 4)
	require.NotEqual(t, p, ledger.PartitionOf(other, 4))
	claims := make([]ledger.FenceClaim, 4)
	for i := range claims {
		claims[i] = fenceClaim(i, "node-a", 0)
	}
	pos, err := st.Fence(ctx, claims)
	require.NoError(t, err)
	o := &fencedOwner{fences: map[int]uint64{}, lost: map[int]bool{}}
	for i, at := range pos {
		o.fences[i] = at
	}
	w, stop := runMem(t, st, writer.Options{Owner: o, Fences: o})
	defer stop()

	buy := func(id, account string) map[string]any {
		return map[string]any{"command_id": id, "account_id": account, "license_id": "L-" + id, "source": "sales", "credits": "5"}
	}
	require.Nil(t, send(t, w, "purchase_license", buy("f1", acct)).Err)
	recs := *lastRecs.Load()
	require.Len(t, recs, 1)
	assert.True(t, recs[0].CheckFence, "the lone record carries the fence")
	assert.Equal(t, p, recs[0].FencePartition)
	assert.Equal(t, pos[p], recs[0].FenceHead)

	// Node b takes the partition over: it fences over a's ownership record.
	_, err = st.Fence(ctx, []ledger.FenceClaim{fenceClaim(p, "node-b", pos[p])})
	require.NoError(t, err)
	before := appends.Load()
	res := send(t, w, "purchase_license", buy("f2", acct))
	require.NotNil(t, res.Err)
	assert.True(t, res.Redirect, "the command goes to the new owner: %v", res.Err)
	assert.Equal(t, before+1, appends.Load(), "tried once, not re-decided up to MaxAttempts")
	assert.EqualValues(t, 1, o.losses.Load())
	assert.False(t, o.Owns(acct))
	recsNow, err := st.ReadAccount(ctx, acct, 0)
	require.NoError(t, err)
	assert.Len(t, recsNow, 1, "the fenced append stored nothing")

	// Decided no more: redirected without an append.
	res = send(t, w, "purchase_license", buy("f3", acct))
	assert.True(t, res.Redirect)
	assert.Equal(t, before+1, appends.Load())
	// Its other partitions go on.
	require.Nil(t, send(t, w, "purchase_license", buy("f4", other)).Err)
}
