package writer_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// TestMoveByAnotherNodeKeepsTheHolderChecked: node b links to its account y a subscription held
// by x, an account of a partition node a owns and fences. b appends x's side (the unlink) with
// x's version check only: b holds no fence for x's partition. a's memory of x does not know of
// it; a's next command on x is one record, and if it carried a's fence instead of x's version
// check (carryFences) it would land on top of b's event with the same version. A subscription
// holder is written by other nodes too, so its record keeps its version check: a's append is
// refused, x re-read, and the command decided again on x's real history.
func TestMoveByAnotherNodeKeepsTheHolderChecked(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	x, y := twoPartitionAccounts(t)
	fo := fencedRig(t, r)
	wa, wb, fa, _ := twoNodes(t, r, fo, ledger.PartitionOf(x, 4), ledger.PartitionOf(y, 4), writer.Options{})
	require.Nil(t, linkS(t, wa, "l1", x).Err)
	require.Nil(t, linkS(t, wb, "l2", y).Err, "b moves the subscription from x")

	res := do(t, wa, "purchase_license", map[string]any{"command_id": "b1", "account_id": x, "license_id": "LX", "source": "aws_marketplace", "credits": "5"})
	require.Nil(t, res.Err)
	assert.Equal(t, []uint64{1, 2, 3}, versionsOf(t, r.store, x), "no version stored twice on x")
	assert.Zero(t, fa.losses.Load(), "a keeps its partition: x merely moved")
	var got ledger.Account
	wa.EachAccount(func(id string, a ledger.Account) {
		if id == x {
			got = a
		}
	})
	assert.EqualValues(t, 3, got.Version)
	assert.Empty(t, got.Subscription.ID)
}

// TestRejectionOnAMovedHolderIsNotKept: node b moves a subscription away from x, an account of a
// partition node a owns; a's memory of x still has it. A sales license on x, decided by a from
// that memory, is a subscription_conflict that x's history no longer supports; stored and
// answered, it would be the answer to that command_id for good. A rejection on an account that
// holds a subscription is answered only while a read of the account after the write finds it
// at the version it was decided at; otherwise the client is told to retry, and the retry is
// decided on x re-read.
func TestRejectionOnAMovedHolderIsNotKept(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	r.rejections = log
	x, y := twoPartitionAccounts(t)
	fo := fencedRig(t, r)
	wa, wb, _, _ := twoNodes(t, r, fo, ledger.PartitionOf(x, 4), ledger.PartitionOf(y, 4), writer.Options{Rejections: r.rejections})
	require.Nil(t, linkS(t, wa, "l1", x).Err)
	require.Nil(t, linkS(t, wb, "l2", y).Err, "b moves the subscription from x")

	buy := map[string]any{"command_id": "s1", "account_id": x, "license_id": "LS", "source": "sales", "credits": "5"}
	res := do(t, wa, "purchase_license", buy)
	for i := 0; i < 3 && res.Err != nil && res.Err.Code == ledger.CodeUnavailable; i++ {
		res = do(t, wa, "purchase_license", buy)
	}
	require.Nil(t, res.Err, "x holds no subscription any more: the sales license is accepted")
	assert.Equal(t, []uint64{1, 2, 3}, versionsOf(t, r.store, x))
}
