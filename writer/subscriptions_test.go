package writer_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// subRun starts an embedded JetStream, a store and a running writer on it (the shared rig).
func subRun(t *testing.T) (*jetstore.Store, *writer.Writer) {
	t.Helper()
	r := newRig(t)
	w, stop := r.start(t, nil, 0)
	t.Cleanup(stop)
	return r.store, w
}

func subLink(t *testing.T, w *writer.Writer, cmd, account string) writer.Result {
	t.Helper()
	return do(t, w, "link_subscription", map[string]any{"command_id": cmd, "account_id": account, "subscription_id": "S", "marketplace": "aws"})
}

// lastLink decodes the SubscriptionLinked event of an account's last record.
func lastLink(t *testing.T, st *jetstore.Store, account string) events.SubscriptionLinked {
	t.Helper()
	recs, err := st.ReadAccount(context.Background(), account, 0)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	ev, err := events.Decode(recs[len(recs)-1].Data)
	require.NoError(t, err)
	l, ok := ev.Data.(events.SubscriptionLinked)
	require.True(t, ok, "last event of %s is %s", account, ev.Type)
	return l
}

// TestSubscriptionOwnerSurvivesReload: when a former holder's account is re-read from the store
// (its head moved under the writer), replaying its old SubscriptionLinked must not make it the
// holder again: the next link still moves the subscription from the real holder.
func TestSubscriptionOwnerSurvivesReload(t *testing.T) {
	st, w := subRun(t)
	require.Nil(t, subLink(t, w, "l1", "A").Err)
	require.Nil(t, subLink(t, w, "l2", "B").Err)
	assert.Equal(t, "A", lastLink(t, st, "B").PreviousAccountID)

	// Another process appends a valid event to A behind the writer's back.
	recs, err := st.ReadAccount(context.Background(), "A", 0)
	require.NoError(t, err)
	last, err := events.Decode(recs[len(recs)-1].Data)
	require.NoError(t, err)
	raw, err := events.EncodePayload(events.PaygContractPurchased{ContractID: "foreign", PurchasedAt: last.OccurredAt})
	require.NoError(t, err)
	env := events.Envelope{EventID: uuid.Must(uuid.NewV7()).String(), Type: events.TypePaygContractPurchased,
		SchemaVersion: 1, AccountID: "A", Version: last.Version + 1, OccurredAt: last.OccurredAt, CommandID: "foreign",
		CorrelationID: "foreign", Payload: raw, PrevHash: last.Hash}
	require.NoError(t, env.Seal())
	data, err := events.Encode(&env)
	require.NoError(t, err)
	_, err = st.Append(context.Background(), []ledger.Record{{AccountID: "A", Data: data, Version: env.Version, CheckVersion: true, ExpectedVersion: last.Version}})
	require.NoError(t, err)

	// The writer's next command on A conflicts, re-reads A (replaying its old link) and retries.
	res := do(t, w, "purchase_payg_contract", map[string]any{"command_id": "p1", "account_id": "A", "contract_id": "mine"})
	require.Nil(t, res.Err)

	res = subLink(t, w, "l3", "C")
	require.Nil(t, res.Err)
	assert.Equal(t, "B", lastLink(t, st, "C").PreviousAccountID, "the subscription moved from its real holder")
	bRecs, err := st.ReadAccount(context.Background(), "B", 0)
	require.NoError(t, err)
	ev, err := events.Decode(bRecs[len(bRecs)-1].Data)
	require.NoError(t, err)
	u, ok := ev.Data.(events.SubscriptionUnlinked)
	require.True(t, ok)
	assert.Equal(t, "C", u.MovedToAccountID)
}

// TestRepeatedUsageReplaysTheFirstResult: the writer answers a repeated usage_id (new command
// id, same content) with the first command's result and appends nothing.
func TestRepeatedUsageReplaysTheFirstResult(t *testing.T) {
	_, w := subRun(t)
	require.Nil(t, do(t, w, "purchase_payg_contract", map[string]any{"command_id": "buy", "account_id": "A", "contract_id": "P"}).Err)
	require.Nil(t, do(t, w, "activate_payg_contract", map[string]any{"command_id": "act", "account_id": "A", "contract_id": "P"}).Err)
	require.Nil(t, do(t, w, "switch_billing_model", map[string]any{"command_id": "sw", "account_id": "A", "feature": "file_security", "to": "payg"}).Err)
	usage := func(cmd, qty string) map[string]any {
		return map[string]any{"command_id": cmd, "account_id": "A", "usage_id": "u1", "feature": "file_security",
			"quantity": qty, "unit": "gb", "occurred_at": "2026-03-01T00:00:00Z"}
	}
	first := do(t, w, "record_usage", usage("r1", "2"))
	require.Nil(t, first.Err)
	head := w.Head()
	again := do(t, w, "record_usage", usage("r2", "2.0"))
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	again.Replayed = false
	assert.Equal(t, first, again)
	assert.Equal(t, head, w.Head(), "nothing appended")
	other := do(t, w, "record_usage", usage("r3", "3"))
	require.NotNil(t, other.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, other.Err.Code)
}
