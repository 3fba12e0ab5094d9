package writer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// stallingLog is an in-memory rejection log; before, when set, runs once before the next
// write is stored (another node taking a partition over while the write is in flight).
type stallingLog struct {
	mu     sync.Mutex
	rs     []ledger.Rejection
	revs   map[uint64]ledger.Revocation // a revocation's position (rs holds a zero rejection there)
	before func()
}

func (l *stallingLog) RevokeRejections(_ context.Context, rs []ledger.Revocation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revs == nil {
		l.revs = map[uint64]ledger.Revocation{}
	}
	for _, rv := range rs {
		l.rs = append(l.rs, ledger.Rejection{})
		l.revs[uint64(len(l.rs))] = rv
	}
	return nil
}

func (l *stallingLog) FirstPosition(context.Context) (uint64, error) { return 1, nil }

func (l *stallingLog) AppendRejections(_ context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error) {
	l.mu.Lock()
	before := l.before
	l.before = nil
	l.mu.Unlock()
	if before != nil {
		before()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at := make([]ledger.RejectionAt, len(rs))
	for i := range rs {
		l.rs = append(l.rs, rs[i])
		at[i] = ledger.RejectionAt{Position: uint64(len(l.rs))} // one rejection a position
	}
	return at, nil
}

func (l *stallingLog) ReadRejections(_ context.Context, from uint64, fn func(ledger.Rejection, ledger.RejectionAt), revoked func(ledger.Revocation)) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := max(from, 1); i <= uint64(len(l.rs)); i++ {
		if rv, ok := l.revs[i]; ok {
			revoked(rv)
			continue
		}
		fn(l.rs[i-1], ledger.RejectionAt{Position: i})
	}
	return uint64(len(l.rs)), nil
}

func (l *stallingLog) ReadRejectionAt(_ context.Context, at ledger.RejectionAt) (ledger.Rejection, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.Position == 0 || at.Position > uint64(len(l.rs)) || at.Index != 0 || l.rs[at.Position-1].CommandID == "" {
		return ledger.Rejection{}, ledger.ErrNoRecord
	}
	return l.rs[at.Position-1], nil
}

func (l *stallingLog) has(commandID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.rs {
		if r.CommandID == commandID {
			return true
		}
	}
	return false
}

// accountIn finds an account id of partition p (of 4).
func accountIn(t *testing.T, p int, prefix string) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); ledger.PartitionOf(id, 4) == p {
			return id
		}
	}
	t.Fatalf("no account of partition %d", p)
	return ""
}

func overdraw(commandID, account string) map[string]any {
	return map[string]any{"command_id": commandID, "account_id": account, "feature": "file_security", "credits": "50"}
}

// Issue 12: a rejection is answered only if, once it is durable in the rejection log, its
// partition's fence is still this writer's. Here node b fences the partition while a's
// rejection write is in flight (b may have loaded the log before it landed); a's lease check
// still passes (fencedOwner owns until told Lost), so only the fence read can tell: the client
// is redirected, not told a's answer, and a loses the partition. A round without rejections
// reads no fence; a round with rejections reads them in one call; a fence that cannot be read
// is answered unavailable and the rejection forgotten.
func TestRejectionAnsweredOnlyUnderItsFence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fenceReads atomic.Int32
	var failFenceRead atomic.Bool
	st := &writer.MemStore{BeforeRead: func(_ context.Context, op, _ string) error {
		if op != "FenceHeads" {
			return nil
		}
		fenceReads.Add(1)
		if failFenceRead.Swap(false) {
			return errors.New("store unreachable")
		}
		return nil
	}}
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
	log := &stallingLog{}
	w, stop := runMem(t, st, writer.Options{Owner: o, Fences: o, Rejections: log})
	defer stop()
	moving, staying := accountIn(t, 1, "moving"), accountIn(t, 2, "staying")

	require.Nil(t, send(t, w, "purchase_license", buy(staying, "L-1")).Err)
	assert.Zero(t, fenceReads.Load(), "a round without rejections reads no fence")
	res := send(t, w, "allocate_credits", overdraw("o1", staying))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeInsufficientCredits, res.Err.Code, "answered under an unmoved fence: %v", res.Err)
	assert.EqualValues(t, 1, fenceReads.Load(), "one fence read for the round's rejections")

	// b takes partition 1 over while a's rejection is being written.
	log.mu.Lock()
	log.before = func() {
		_, err := st.Fence(ctx, []ledger.FenceClaim{fenceClaim(1, "node-b", pos[1])})
		assert.NoError(t, err)
	}
	log.mu.Unlock()
	res = send(t, w, "allocate_credits", overdraw("o2", moving))
	require.NotNil(t, res.Err)
	assert.True(t, res.Redirect, "a's rejection is not the answer once the fence moved: %v", res.Err)
	assert.True(t, log.has("o2"), "the rejection was durable all the same")
	assert.EqualValues(t, 1, o.losses.Load(), "the partition is lost to a")
	assert.False(t, o.Owns(moving))
	reads := fenceReads.Load()
	res = send(t, w, "allocate_credits", overdraw("o2", moving))
	assert.True(t, res.Redirect, "the retry goes to the new owner: %v", res.Err)
	assert.Equal(t, reads, fenceReads.Load(), "decided no more")

	// A fence that cannot be read: unavailable, and forgotten, so the retry is decided again.
	failFenceRead.Store(true)
	res = send(t, w, "allocate_credits", overdraw("o3", staying))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeUnavailable, res.Err.Code, "%v", res.Err)
	assert.False(t, res.Redirect)
	res = send(t, w, "allocate_credits", overdraw("o3", staying))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeInsufficientCredits, res.Err.Code, "%v", res.Err)
	assert.False(t, res.Replayed, "decided again, not replayed")
	res = send(t, w, "allocate_credits", overdraw("o3", staying))
	assert.True(t, res.Replayed, "now remembered")
}
