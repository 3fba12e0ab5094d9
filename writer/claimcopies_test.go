package writer_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// TestAbandonedClaimLeavesNoCopy: the claim of subscription S names x, an account with no
// events (a link of S to x was claimed, and its append never landed). x is in a partition whose
// lease lapsed while its fence is still the writer's (kept for a re-acquire). A link of S to y
// reads x as a foreign account to find it does not hold S (claimedHolder); that copy must go
// with the link. Left behind, it is x to the writer once the partition is re-acquired without a
// load: x's first command is decided on it and the append's end drops it (dropForeign), so the
// next command finds no x and appends version 1 again, its lone record carrying the fence
// instead of x's version check: x's chain forks.
func TestAbandonedClaimLeavesNoCopy(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, y := twoPartitionAccounts(t)
	claims := &memClaims{}
	_, err := claims.ClaimSubscription(context.Background(), "S", writer.SubscriptionClaim{Holder: x}, 0)
	require.NoError(t, err)
	o := &lapsingOwner{fencedOwner: fencedRig(t, r), mine: map[int]bool{0: true, 1: true, 2: true, 3: true}}
	w := newWriter(t, r, r.store, writer.Options{Owner: o, Fences: o, Subscriptions: claims})
	stop := run(t, w)
	defer stop()

	px := ledger.PartitionOf(x, 4)
	o.lapsed.Store(px, true)
	res := do(t, w, "link_subscription", map[string]any{"command_id": "l1", "account_id": y, "subscription_id": "S", "marketplace": "aws"})
	require.Nil(t, res.Err, "x never got S: y links it without a move")
	o.lapsed.Delete(px) // re-acquired, fence unchanged: kept without a load

	for i, lic := range []string{"LX1", "LX2"} {
		res := do(t, w, "purchase_license", map[string]any{"command_id": "b" + lic, "account_id": x, "license_id": lic, "source": "sales", "credits": "5"})
		require.Nil(t, res.Err)
		assert.EqualValues(t, i+1, res.Version)
	}
	assert.Equal(t, []uint64{1, 2}, versionsOf(t, r.store, x), "x's history continues; no version stored twice")
}

// TestLinkBackToAMovedHolderIsNotAnsweredFromMemory: node b moves subscription S from x (node
// a's) to z (b's); a's memory of x still has S. A link of S back to x on a finds, through the
// claim, z holding S, yet x's stale copy decides the link as "already linked here" and answers
// it without an append: the client is told x holds S while z does. The requester's copy
// contradicting the holder found is re-read first, and the link moves S from z.
func TestLinkBackToAMovedHolderIsNotAnsweredFromMemory(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, z := twoPartitionAccounts(t)
	fo := fencedRig(t, r)
	wa, wb, _, _ := twoNodes(t, r, fo, ledger.PartitionOf(x, 4), ledger.PartitionOf(z, 4), writer.Options{})
	require.Nil(t, linkS(t, wa, "l1", x).Err)
	require.Nil(t, linkS(t, wb, "l2", z).Err, "b moves the subscription from x")

	res := linkS(t, wa, "l3", x)
	require.Nil(t, res.Err)
	assert.NotEmpty(t, res.Events, "S is moved back to x, not answered from x's stale copy")
	assert.Equal(t, []uint64{1, 2, 3}, versionsOf(t, r.store, x))
	assert.Equal(t, []uint64{1, 2}, versionsOf(t, r.store, z), "z's side of the move was appended: S has one holder")
}

// TestUnlinkOnAMovedHolderIsDecidedOnItsHistory: node b moves subscription S from x (node a's)
// to z; a's memory of x still has S. An unlink of S on x is decided on that copy and stopped
// at the claim (it names z): unavailable, retry. The retry must be decided on x as stored
// (S is not linked to it), not stopped at the claim again and again from the same stale copy.
func TestUnlinkOnAMovedHolderIsDecidedOnItsHistory(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, z := twoPartitionAccounts(t)
	fo := fencedRig(t, r)
	wa, wb, _, _ := twoNodes(t, r, fo, ledger.PartitionOf(x, 4), ledger.PartitionOf(z, 4), writer.Options{})
	require.Nil(t, linkS(t, wa, "l1", x).Err)
	require.Nil(t, linkS(t, wb, "l2", z).Err, "b moves the subscription from x")

	unlink := map[string]any{"command_id": "u1", "account_id": x, "subscription_id": "S"}
	res := do(t, wa, "unlink_subscription", unlink)
	for i := 0; i < 3 && res.Err != nil && res.Err.Code == ledger.CodeUnavailable; i++ {
		res = do(t, wa, "unlink_subscription", unlink)
	}
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeNotFound, res.Err.Code, "x does not hold S: %s", res.Err.Message)
	assert.Equal(t, []uint64{1, 2}, versionsOf(t, r.store, x))
}
