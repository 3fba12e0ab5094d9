package writer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// memClaims is a SubscriptionClaims in memory, shared by the writers of one test (what the
// claims bucket is to the nodes; its store does not matter to these tests).
type memClaims struct {
	mu sync.Mutex
	m  map[string]writer.SubscriptionClaim
}

func (c *memClaims) Subscription(_ context.Context, id string) (writer.SubscriptionClaim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id], nil
}

func (c *memClaims) ClaimSubscription(_ context.Context, id string, sc writer.SubscriptionClaim, revision uint64) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]writer.SubscriptionClaim{}
	}
	if c.m[id].Revision != revision {
		return 0, writer.ErrClaimMoved
	}
	sc.Revision = revision + 1
	c.m[id] = sc
	return sc.Revision, nil
}

// lapsingOwner is a fencedOwner whose partitions in lapsed are not owned by the lease clock and
// carry no fence for a while (the lease lapsed; the fence is still the writer's, so the server
// keeps their accounts for a re-acquire: settleTenures), and whose partitions not in mine are
// another node's.
type lapsingOwner struct {
	*fencedOwner
	mine   map[int]bool
	lapsed sync.Map // partition -> true
}

func (o *lapsingOwner) active(id string) bool {
	p := ledger.PartitionOf(id, 4)
	_, lapsed := o.lapsed.Load(p)
	return o.mine[p] && !lapsed
}
func (o *lapsingOwner) Owns(id string) bool { return o.active(id) && o.fencedOwner.Owns(id) }
func (o *lapsingOwner) Fence(id string) (int, uint64, bool) {
	p, pos, ok := o.fencedOwner.Fence(id)
	return p, pos, ok && o.active(id)
}

// versionsOf lists the versions stored on the account's subject, in order.
func versionsOf(t *testing.T, st ledger.Store, id string) []uint64 {
	t.Helper()
	recs, err := st.ReadAccount(context.Background(), id, 0)
	require.NoError(t, err)
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Version
	}
	return out
}

// twoPartitionAccounts returns two accounts of different partitions (of 4).
func twoPartitionAccounts(t *testing.T) (x, y string) {
	t.Helper()
	x, y = "held-x", "held-y"
	for i := 0; ledger.PartitionOf(x, 4) == ledger.PartitionOf(y, 4); i++ {
		y = "held-y" + string(rune('a'+i))
	}
	return x, y
}

// TestMoveFromALapsedPartitionKeepsItsAccount: the writer holds account x of a partition whose
// lease lapsed while its fence is still the writer's (kept for a re-acquire), and y of one it
// owns. A link of x's subscription to y reads x as a foreign account (installForeign) and, once the
// move's append ends, drops it (dropForeign): without care it replaces and then deletes the
// account the writer holds. Re-acquired with its fence unchanged (no load), x would be a new
// account to the writer, and its next command's lone record, carrying the fence instead of x's
// version check, would land as version 1 again over x's history.
func TestMoveFromALapsedPartitionKeepsItsAccount(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, y := twoPartitionAccounts(t)
	o := &lapsingOwner{fencedOwner: fencedRig(t, r), mine: map[int]bool{0: true, 1: true, 2: true, 3: true}}
	w := newWriter(t, r, r.store, writer.Options{Owner: o, Fences: o, Subscriptions: &memClaims{}})
	stop := run(t, w)
	defer stop()

	link := func(cmd, account string) writer.Result {
		return do(t, w, "link_subscription", map[string]any{"command_id": cmd, "account_id": account, "subscription_id": "S", "marketplace": "aws"})
	}
	require.Nil(t, link("l1", x).Err)
	require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "b1", "account_id": x, "license_id": "LX", "source": "aws_marketplace", "credits": "5"}).Err)

	px := ledger.PartitionOf(x, 4)
	o.lapsed.Store(px, true)
	require.Nil(t, link("l2", y).Err, "the move from x (version-checked) lands")
	o.lapsed.Delete(px) // re-acquired, fence unchanged: kept without a load

	res := do(t, w, "purchase_license", map[string]any{"command_id": "b2", "account_id": x, "license_id": "LX2", "source": "aws_marketplace", "credits": "7"})
	require.Nil(t, res.Err)
	assert.Equal(t, []uint64{1, 2, 3, 4}, versionsOf(t, r.store, x), "x's history continues; no version stored twice")
	var got ledger.Account
	w.EachAccount(func(id string, a ledger.Account) {
		if id == x {
			got = a
		}
	})
	assert.EqualValues(t, 4, got.Version)
	assert.Empty(t, got.Subscription.ID, "x no longer holds the subscription")
}

// TestMoveFromAHeldAccountReadsItFresh: the writer still holds account x of a partition it no
// longer owns (its lease lapsed), and another node (wc) that owns it now has linked subscription S
// to x meanwhile. A link of S to y, an account the writer owns, must find x holding S on the
// stream, not in the writer's old copy of x: that copy says x holds nothing, the claim naming x
// is older than a move in flight, and y would be linked beside x (two holders).
func TestMoveFromAHeldAccountReadsItFresh(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, y := twoPartitionAccounts(t)
	claims := &memClaims{}
	o := &lapsingOwner{fencedOwner: fencedRig(t, r), mine: map[int]bool{0: true, 1: true, 2: true, 3: true}}
	w := newWriter(t, r, r.store, writer.Options{Owner: o, Fences: o, Subscriptions: claims})
	stop := run(t, w)
	defer stop()
	require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "b1", "account_id": x, "license_id": "LX", "source": "aws_marketplace", "credits": "5"}).Err)

	px := ledger.PartitionOf(x, 4)
	o.lapsed.Store(px, true) // the writer keeps x; another node writes x's partition now
	oc := &lapsingOwner{fencedOwner: &fencedOwner{fences: map[int]uint64{}, lost: map[int]bool{}}, mine: map[int]bool{px: true}}
	wc := newWriter(t, r, r.store, writer.Options{Owner: oc, Subscriptions: claims})
	stopC := run(t, wc)
	defer stopC()
	require.Nil(t, linkS(t, wc, "l1", x).Err)

	require.Nil(t, linkS(t, w, "l2", y).Err)
	recs, err := r.store.ReadAccount(context.Background(), x, 0)
	require.NoError(t, err)
	assert.Len(t, recs, 3, "x's side of the move (its unlink) was appended: S has one holder")
}

// twoNodes runs two writers on r's store that share one claims store, as two nodes do: a owns
// partition pa and b partition pb, each under the ownership record fencedRig stored for it and
// holding only that fence; o's other options go to both. The writers stop when the test ends.
func twoNodes(t *testing.T, r *rig, fo *fencedOwner, pa, pb int, o writer.Options) (wa, wb *writer.Writer, fa, fb *fencedOwner) {
	t.Helper()
	o.Subscriptions = &memClaims{}
	fa = &fencedOwner{fences: map[int]uint64{pa: fo.fences[pa]}, lost: map[int]bool{}}
	fb = &fencedOwner{fences: map[int]uint64{pb: fo.fences[pb]}, lost: map[int]bool{}}
	oa := &lapsingOwner{fencedOwner: fa, mine: map[int]bool{pa: true}}
	ob := &lapsingOwner{fencedOwner: fb, mine: map[int]bool{pb: true}}
	oa2, ob2 := o, o
	oa2.Owner, oa2.Fences, ob2.Owner, ob2.Fences = oa, oa, ob, ob
	wa, wb = newWriter(t, r, r.store, oa2), newWriter(t, r, r.store, ob2)
	run(t, wa)
	run(t, wb)
	return wa, wb, fa, fb
}

// linkS links subscription S (AWS) to account on w, with command id cmd.
func linkS(t *testing.T, w *writer.Writer, cmd, account string) writer.Result {
	t.Helper()
	return do(t, w, "link_subscription", map[string]any{"command_id": cmd, "account_id": account, "subscription_id": "S", "marketplace": "aws"})
}
