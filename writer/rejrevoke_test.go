package writer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// TestCompactRejectionsPrunedPastTheLog: the rejection log drops its oldest messages (an
// operator purges them here; its MaxAge does the same after 30 days); the next snapshot prunes
// the compact rejections that pointed there, so their memory is not held for ever, and a retry
// of such a command is decided afresh. The rejections the log still holds are replayed.
func TestCompactRejectionsPrunedPastTheLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := rejRig(t)
	w := newWriter(t, r, r.store, writer.Options{Rejections: r.rejections, RejectionsRemembered: 2, Snapshots: r.snaps, SnapshotEvery: 1})
	run(t, w)
	fundAcme(t, w)
	first := rejectFive(t, w) // one message each, positions 1-5; the snapshot after compacts them

	st, err := r.store.JetStream().Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	require.NoError(t, st.Purge(ctx, jetstream.WithPurgeSequence(4))) // big-0 to big-2 are gone
	// Appends until a snapshot follows one (one is skipped while the previous save is in flight).
	for i := 0; i < 100 && w.Stats().RejectionsPruned == 0; i++ {
		require.Nil(t, do(t, w, "purchase_license", buy(fmt.Sprint("zeta-", i), fmt.Sprint("Z-", i))).Err)
	}
	require.Eventually(t, func() bool { return w.Stats().RejectionsPruned == 3 }, 10*time.Second, 10*time.Millisecond,
		"the three compact rejections below the log's first position are pruned (pruned %d)", w.Stats().RejectionsPruned)

	for i := range 3 {
		again := do(t, w, "allocate_credits", bigAllocation(i))
		assert.Nil(t, again.Err, "big-%d is past the log: decided afresh, and the credits are there now", i)
		assert.False(t, again.Replayed)
	}
	for i := 3; i < 5; i++ {
		again := do(t, w, "allocate_credits", bigAllocation(i))
		require.NotNil(t, again.Err, "big-%d is still in the log", i)
		assert.True(t, again.Replayed)
		assert.Equal(t, first[i].Err, again.Err)
	}
	assert.Equal(t, uint64(2), w.Stats().RejectionReadBack)
	assert.Equal(t, uint64(3), w.Stats().RejectionsPruned, "nothing else pruned")
}

// gatedLog is the real rejection log whose revocations wait while gate is closed.
type gatedLog struct {
	writer.RejectionLog
	mu      sync.Mutex
	gate    chan struct{}
	waiting atomic.Int32
}

func (l *gatedLog) RevokeRejections(ctx context.Context, rs []ledger.Revocation) error {
	l.mu.Lock()
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		l.waiting.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.RejectionLog.RevokeRejections(ctx, rs)
}

// fenceFailing fails the next fence read when fail is set.
type fenceFailing struct {
	ledger.Store
	fail atomic.Bool
}

func (s *fenceFailing) FenceHeads(ctx context.Context, ps []int) ([]uint64, error) {
	if s.fail.Swap(false) {
		return nil, errors.New("store unreachable")
	}
	return s.Store.FenceHeads(ctx, ps)
}

func fund(t *testing.T, w *writer.Writer, account string) {
	t.Helper()
	require.Nil(t, do(t, w, "purchase_license", buy(account, "L-"+account)).Err)
	require.Nil(t, do(t, w, "activate_license", map[string]any{"command_id": "act-" + account, "account_id": account, "license_id": "L-" + account}).Err)
}

func addCredits(t *testing.T, w *writer.Writer, account string) {
	t.Helper()
	require.Nil(t, do(t, w, "upgrade_contract", map[string]any{"command_id": "up-" + account, "account_id": account, "license_id": "L-" + account, "additional_credits": "1000"}).Err)
}

// TestUnansweredRejectionIsRevoked: node a's rejections that are durable but were not answered
// (o3: its fence read failed; o2: node b fenced the partition meanwhile) are revoked in the log,
// so a node that loads the log later decides a retry of o3 afresh (accepted: the credits came
// since) instead of replaying a's never-sent rejection. Node b, which loaded before a's
// rejection of o2 landed, rejected o2 itself, and that later rejection (answered) is still
// replayed: the revocation names a's rejection's place, not the command_id.
func TestUnansweredRejectionIsRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := rejRig(t)
	moving, staying := accountIn(t, 1, "moving"), accountIn(t, 2, "staying")
	oa := fencedRig(t, r)
	log := &gatedLog{RejectionLog: r.rejections}
	sa := &fenceFailing{Store: r.store}
	wa := newWriter(t, r, sa, writer.Options{Owner: oa, Fences: oa, Rejections: log})
	stopA := run(t, wa)
	fund(t, wa, moving)
	fund(t, wa, staying)

	sa.fail.Store(true)
	res := do(t, wa, "allocate_credits", overdraw("o3", staying))
	require.NotNil(t, res.Err)
	require.Equal(t, ledger.CodeUnavailable, res.Err.Code, "%v", res.Err)
	require.Eventually(t, func() bool { return wa.Stats().Revocations == 1 }, 10*time.Second, 10*time.Millisecond)

	// b takes partition 1 over and loads; a has not noticed yet.
	pos, err := r.store.Fence(ctx, []ledger.FenceClaim{fenceClaim(1, "node-b", oa.fences[1])})
	require.NoError(t, err)
	ob := &fencedOwner{fences: map[int]uint64{1: pos[0]}, lost: map[int]bool{}}
	wb := newWriter(t, r, r.store, writer.Options{Owner: ob, Fences: ob, Rejections: r.rejections})
	stopB := run(t, wb)
	log.mu.Lock()
	gate := make(chan struct{})
	log.gate = gate
	log.mu.Unlock()
	res = do(t, wa, "allocate_credits", overdraw("o2", moving))
	require.True(t, res.Redirect, "a's rejection is not answered under b's fence: %v", res.Err)
	require.Eventually(t, func() bool { return log.waiting.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	res = do(t, wb, "allocate_credits", overdraw("o2", moving))
	require.NotNil(t, res.Err)
	require.Equal(t, ledger.CodeInsufficientCredits, res.Err.Code, "b decides o2 itself: %v", res.Err)
	require.False(t, res.Replayed)
	close(gate) // a's revocation of its own rejection of o2 lands after b's rejection
	require.Eventually(t, func() bool { return wa.Stats().Revocations == 2 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, wa.Stats().RevocationsFailed)

	// The credits come: a fresh decision would accept either command.
	addCredits(t, wb, moving)
	addCredits(t, wa, staying)
	stopA()
	stopB()

	wc := newWriter(t, r, r.store, writer.Options{Rejections: r.rejections})
	run(t, wc)
	again := do(t, wc, "allocate_credits", overdraw("o3", staying))
	assert.Nil(t, again.Err, "a's revoked rejection of o3 is not replayed: decided afresh")
	assert.False(t, again.Replayed)
	again = do(t, wc, "allocate_credits", overdraw("o2", moving))
	require.NotNil(t, again.Err, "b's rejection of o2, answered, survives a's revocation")
	assert.True(t, again.Replayed)
	assert.Equal(t, ledger.CodeInsufficientCredits, again.Err.Code)
}
