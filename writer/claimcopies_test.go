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
