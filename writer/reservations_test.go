package writer_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// The reservations a store implies: each id for the account that created it (an item id of an
// upgrade too), each subscription's holder after moves and unlinks, and a clash when an event
// stored by something other than the writer created an id another account holds.
func TestReservationsOf(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	w := memWriter(t, st, writer.Options{})
	stop := run(t, w)
	require.Nil(t, send(t, w, "purchase_license", buyL("p1", "A", "L-a")).Err)
	require.Nil(t, send(t, w, "purchase_license", buyL("p2", "B", "L-b")).Err)
	require.Nil(t, send(t, w, "purchase_payg_contract", map[string]any{"command_id": "c1", "account_id": "B", "contract_id": "C-b"}).Err)
	require.Nil(t, do(t, w, "link_subscription", map[string]any{"command_id": "l1", "account_id": "D", "subscription_id": "S", "marketplace": "aws"}).Err)
	require.Nil(t, do(t, w, "link_subscription", map[string]any{"command_id": "l2", "account_id": "E", "subscription_id": "S", "marketplace": "aws"}).Err)
	require.Nil(t, do(t, w, "link_subscription", map[string]any{"command_id": "l3", "account_id": "D", "subscription_id": "T", "marketplace": "aws"}).Err)
	require.Nil(t, do(t, w, "unlink_subscription", map[string]any{"command_id": "u1", "account_id": "D", "subscription_id": "T"}).Err)
	stop()
	// A writer that believes it owns a store of its own appends L-a for C (never a real writer's doing).
	other := memstore.New()
	rogue := memWriter(t, other, writer.Options{})
	stopR := run(t, rogue)
	require.Nil(t, send(t, rogue, "purchase_license", buyL("r1", "C", "L-a")).Err)
	stopR()
	recs, err := other.ReadAccount(context.Background(), "C", 0)
	require.NoError(t, err)
	for _, r := range recs {
		_, err := st.Append(context.Background(), []ledger.Record{{AccountID: "C", Data: r.Data, Version: r.Version, CheckVersion: true, ExpectedVersion: r.Version - 1}})
		require.NoError(t, err)
	}

	res, clashes, err := writer.ReservationsOf(context.Background(), st)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"license:L-a": "A", "license:L-b": "B", "payg:C-b": "B"}, res.IDs)
	assert.Equal(t, "E", res.Subscriptions["S"].Holder, "moved from D")
	assert.Equal(t, "D", res.Subscriptions["S"].Previous)
	assert.Equal(t, "", res.Subscriptions["T"].Holder, "unlinked")
	assert.Equal(t, "D", res.Subscriptions["T"].Previous)
	require.Len(t, clashes, 1)
	assert.Contains(t, clashes[0], "license L-a created by C")
	assert.Zero(t, res.Undecodable)
}
