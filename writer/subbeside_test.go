package writer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// gatedClaims is memClaims whose claim reads wait at a gate while armed.
type gatedClaims struct {
	memClaims
	armed atomic.Bool
	gate  *gate
}

func (c *gatedClaims) Subscription(ctx context.Context, id string) (writer.SubscriptionClaim, error) {
	if c.armed.Load() {
		if err := c.gate.pass(ctx); err != nil {
			return writer.SubscriptionClaim{}, err
		}
	}
	return c.memClaims.Subscription(ctx, id)
}

// gatedAccountReads is a store whose reads of one account's events wait at a gate while armed.
type gatedAccountReads struct {
	ledger.Store
	account string
	armed   atomic.Bool
	gate    *gate
}

func (s *gatedAccountReads) ReadAccount(ctx context.Context, id string, from uint64) ([]ledger.Record, error) {
	if id == s.account && s.armed.Load() {
		if err := s.gate.pass(ctx); err != nil {
			return nil, err
		}
	}
	return s.Store.ReadAccount(ctx, id, from)
}

// answeredWhileBlocked asserts that an allocation on account b is accepted while g holds the
// link (within 3 s, less than the claim round trip's 5 s bound: a writer goroutine blocked in
// the round trip answers it only once the round trip gives up), that the link is still waiting
// then, and that it is accepted once g opens.
func answeredWhileBlocked(t *testing.T, w *writer.Writer, g *gate, link <-chan writer.Result, b string) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the link's store call never started")
	}
	res := do(t, w, "allocate_credits", map[string]any{"command_id": "alloc-" + b, "account_id": b, "feature": "file_security", "credits": "4"})
	require.Nil(t, res.Err, "the allocation on %s is accepted", b)
	// Not a time bound: the gate stays shut until the test opens it, so an allocation that had
	// to wait for the link's store call is answered only once that call gave up (its timeout).
	require.False(t, g.left.Load(), "the allocation on %s was answered only after the link's store call gave up", b)
	select {
	case res := <-link:
		t.Fatalf("the link was answered while its store call was blocked: %+v", res)
	default:
	}
	close(g.open)
	res = result(t, link)
	require.Nil(t, res.Err)
	assert.NotEmpty(t, res.Events)
}

// TestBlockedClaimReadHoldsOnlyItsLink: a link's read of the subscription claim blocks; an
// allocation on another account is answered meanwhile, and the link once the read returns.
// (Before, the read was made on the writer goroutine: every account waited for it.)
func TestBlockedClaimReadHoldsOnlyItsLink(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	claims := &gatedClaims{gate: newGate()}
	w := newWriter(t, r, r.store, writer.Options{Subscriptions: claims})
	stop := run(t, w)
	defer stop()
	fund(t, w, "B")

	claims.armed.Store(true)
	link := submitted(t, w, "link_subscription", map[string]any{"command_id": "l1", "account_id": "A", "subscription_id": "S", "marketplace": "aws"})
	<-claims.gate.entered
	onA := submitted(t, w, "purchase_license", buy("A", "LA")) // A's next command waits for the link
	answeredWhileBlocked(t, w, claims.gate, link, "B")
	res := result(t, onA)
	require.NotNil(t, res.Err, "decided after the link, in order: A pays through S")
	assert.Equal(t, ledger.CodeSubscriptionConflict, res.Err.Code)
}

// TestBlockedHolderReadHoldsOnlyItsLink: node b links subscription S, held by x (an account of a
// partition node a writes), to y; b's read of x's events blocks. An allocation on another account
// of b's is answered meanwhile, and the move once the read returns.
func TestBlockedHolderReadHoldsOnlyItsLink(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, y := twoPartitionAccounts(t)
	fo := fencedRig(t, r)
	claims := &memClaims{}
	px := ledger.PartitionOf(x, 4)
	others := map[int]bool{}
	fb := &fencedOwner{fences: map[int]uint64{}, lost: map[int]bool{}}
	for p := 0; p < 4; p++ {
		if p != px {
			others[p], fb.fences[p] = true, fo.fences[p]
		}
	}
	fa := &fencedOwner{fences: map[int]uint64{px: fo.fences[px]}, lost: map[int]bool{}}
	oa := &lapsingOwner{fencedOwner: fa, mine: map[int]bool{px: true}}
	ob := &lapsingOwner{fencedOwner: fb, mine: others}
	wa := newWriter(t, r, r.store, writer.Options{Owner: oa, Fences: oa, Subscriptions: claims})
	stopA := run(t, wa)
	defer stopA()
	sb := &gatedAccountReads{Store: r.store, account: x, gate: newGate()}
	wb := newWriter(t, r, sb, writer.Options{Owner: ob, Fences: ob, Subscriptions: claims})
	stopB := run(t, wb)
	defer stopB()
	require.Nil(t, do(t, wa, "link_subscription", map[string]any{"command_id": "l1", "account_id": x, "subscription_id": "S", "marketplace": "aws"}).Err)
	b := "other-b"
	for i := 0; ledger.PartitionOf(b, 4) == px; i++ {
		b = "other-b" + string(rune('a'+i))
	}
	fund(t, wb, b)

	sb.armed.Store(true)
	link := submitted(t, wb, "link_subscription", map[string]any{"command_id": "l2", "account_id": y, "subscription_id": "S", "marketplace": "aws"})
	answeredWhileBlocked(t, wb, sb.gate, link, b)
	assert.Equal(t, []uint64{1, 2}, versionsOf(t, r.store, x), "x's side of the move was appended: S has one holder")
}
