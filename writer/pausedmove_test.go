package writer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// pausedStore holds every append while paused (a writer stopped between its decision and its
// publish): held receives once an append waits, resume lets it go.
type pausedStore struct {
	ledger.Store
	paused atomic.Bool
	held   chan struct{}
	resume chan struct{}
}

func newPausedStore(st ledger.Store) *pausedStore {
	return &pausedStore{Store: st, held: make(chan struct{}, 1), resume: make(chan struct{})}
}

func (s *pausedStore) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	if s.paused.Load() {
		s.held <- struct{}{}
		<-s.resume
	}
	return s.Store.Append(ctx, recs)
}

func (s *pausedStore) awaitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-s.held:
	case <-time.After(10 * time.Second):
		t.Fatal("no append held within 10s")
	}
}

// threePartitionAccounts returns three accounts of different partitions (of 4).
func threePartitionAccounts(t *testing.T) (x, y, z string) {
	t.Helper()
	x, y = twoPartitionAccounts(t)
	for i := 0; ; i++ {
		z = "held-z" + string(rune('a'+i))
		if p := ledger.PartitionOf(z, 4); p != ledger.PartitionOf(x, 4) && p != ledger.PartitionOf(y, 4) {
			return x, y, z
		}
	}
}

// TestPausedOwnersMoveLeavesOneHolder: node a holds x (subscription S) and y, claims a move of S
// from x to y and pauses before its append, for longer than a move may be in flight (b's clock
// runs a minute ahead of a's, past the 30 s a claimed move counts as in flight). Node b takes x's partition over (a new ownership record)
// and links S to z: the claim names y, which does not hold S, so b moves S from x, the claim's
// previous holder, and pauses before its append too. a's append lands after b's ownership
// record: x's record carries x's version check alone (a holder keeps it; carryFences), and no
// fence for the partition a lost. b's append is then refused on x's version, and its retry
// must find S where x's history sent it (y), not conclude from the claim (z, previous x) that
// nobody holds S and link it to z beside y.
func TestPausedOwnersMoveLeavesOneHolder(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, y, z := threePartitionAccounts(t)
	px, py, pz := ledger.PartitionOf(x, 4), ledger.PartitionOf(y, 4), ledger.PartitionOf(z, 4)
	fo := fencedRig(t, r)
	claims := &memClaims{}
	sa := newPausedStore(r.store)
	fa := &fencedOwner{fences: map[int]uint64{px: fo.fences[px], py: fo.fences[py]}, lost: map[int]bool{}}
	oa := &lapsingOwner{fencedOwner: fa, mine: map[int]bool{px: true, py: true}}
	wa := newWriter(t, r, sa, writer.Options{Owner: oa, Fences: oa, Subscriptions: claims})
	stopA := run(t, wa)
	defer stopA()
	link := func(w *writer.Writer, cmd, account string) <-chan writer.Result {
		return submitted(t, w, "link_subscription", map[string]any{"command_id": cmd, "account_id": account, "subscription_id": "S", "marketplace": "aws"})
	}
	require.Nil(t, result(t, link(wa, "l1", x)).Err)

	sa.paused.Store(true)
	toY := link(wa, "l2", y)
	sa.awaitHeld(t) // a claimed S for y and stopped before its append

	// b takes x's partition over: its ownership record, then its load.
	pos, err := r.store.Fence(context.Background(), []ledger.FenceClaim{fenceClaim(px, "node-b", fo.fences[px])})
	require.NoError(t, err)
	nc, err := nats.Connect(r.url)
	require.NoError(t, err)
	defer nc.Close()
	stB, err := jetstore.Open(context.Background(), nc, jetstore.Config{})
	require.NoError(t, err)
	sb := newPausedStore(stB)
	fb := &fencedOwner{fences: map[int]uint64{px: pos[0], pz: fo.fences[pz]}, lost: map[int]bool{}}
	ob := &lapsingOwner{fencedOwner: fb, mine: map[int]bool{px: true, pz: true}}
	later := fixedClock{time.Date(2026, 3, 1, 0, 1, 0, 0, time.UTC)} // a's claim is a minute old
	wb := newWriter(t, r, sb, writer.Options{Owner: ob, Fences: ob, Subscriptions: claims, Clock: later})
	stopB := run(t, wb)
	defer stopB()
	sb.paused.Store(true)
	toZ := link(wb, "l3", z)
	sb.awaitHeld(t) // b claimed S for z (a move from x) and stopped before its append

	sa.paused.Store(false)
	close(sa.resume)
	require.Nil(t, result(t, toY).Err, "a's append lands on x's version check alone, after b's ownership record")
	sb.paused.Store(false)
	close(sb.resume)
	res := result(t, toZ)
	require.Nil(t, res.Err)

	holders := 0
	for _, id := range []string{x, y, z} {
		recs, err := r.store.ReadAccount(context.Background(), id, 0)
		require.NoError(t, err)
		a := ledger.NewAccount(id)
		for _, rec := range recs {
			ev, err := decodeEvent(rec)
			require.NoError(t, err)
			a = ledger.Evolve(a, ev)
		}
		if a.Subscription.ID == "S" {
			holders++
		}
	}
	assert.Equal(t, 1, holders, "S has one holder (x %v, y %v, z %v)", versionsOf(t, r.store, x), versionsOf(t, r.store, y), versionsOf(t, r.store, z))
	assert.Equal(t, []uint64{1, 2}, versionsOf(t, r.store, y), "b moved S from y, where a's move sent it")
}

// decodeEvent decodes a stored record into the event the writer folds.
func decodeEvent(rec ledger.Record) (events.Event, error) {
	ev, err := events.Decode(rec.Data)
	ev.Position = rec.Position
	return ev, err
}
