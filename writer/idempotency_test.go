package writer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// TestCompactedRecordsReplayExactly: after a restart every accepted command is held in compact
// form, and a retry reads its events back from the stream: a command with several events (a
// purchase caught up with renewals) and a subscription move (two accounts' events, the
// requester's reply) replay exactly the first reply, and nothing is appended.
func TestCompactedRecordsReplayExactly(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 1000)
	buy := map[string]any{"command_id": "old-buy", "account_id": "A", "license_id": "L", "source": "sales",
		"credits": "10", "auto_renew": true, "contract_start": "2024-01-15T00:00:00Z"}
	first := do(t, w1, "purchase_license", buy)
	require.Nil(t, first.Err)
	require.Greater(t, len(first.Events), 1, "the purchase was caught up with renewals")
	link := map[string]any{"command_id": "link-a", "account_id": "C", "subscription_id": "S", "marketplace": "aws"}
	require.Nil(t, do(t, w1, "link_subscription", link).Err)
	move := map[string]any{"command_id": "link-b", "account_id": "B", "subscription_id": "S", "marketplace": "aws"}
	moved := do(t, w1, "link_subscription", move)
	require.Nil(t, moved.Err)
	stop1()

	for _, snaps := range []writer.SnapshotStore{r.snaps, nil} { // from the snapshot, and from a full replay
		w, stop := r.start(t, snaps, 1000)
		head := w.Head()
		for _, c := range []struct {
			name string
			body map[string]any
			want writer.Result
		}{{"purchase_license", buy, first}, {"link_subscription", move, moved}} {
			again := do(t, w, c.name, c.body)
			require.Nil(t, again.Err)
			assert.True(t, again.Replayed)
			again.Replayed = false
			assert.Equal(t, c.want, again)
		}
		assert.Equal(t, uint64(2), w.Stats().ReadBack)
		changed := map[string]any{}
		for k, v := range buy {
			changed[k] = v
		}
		changed["credits"] = "11"
		reused := do(t, w, "purchase_license", changed)
		require.NotNil(t, reused.Err)
		assert.Equal(t, ledger.CodeIdempotencyKeyReused, reused.Err.Code)
		assert.Equal(t, head, w.Head(), "nothing appended")
		stop()
	}
}

// TestRetryAfterCompactionPastAForeignMessage: a message that is not an event, stored right after
// a compacted command, does not stop the command's retry from being answered.
func TestRetryAfterCompactionPastAForeignMessage(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 1000)
	buy := map[string]any{"command_id": "c1", "account_id": "acme", "license_id": "L1", "source": "sales", "credits": "5"}
	first := do(t, w1, "purchase_license", buy)
	require.Nil(t, first.Err)
	stop1()
	nc, err := nats.Connect(r.url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstreamFor(nc)
	require.NoError(t, err)
	_, err = js.Publish(context.Background(), jetstore.DefaultSubjects.Of("intruder"), []byte(`{"forged":true}`))
	require.NoError(t, err)
	w2, stop2 := r.start(t, r.snaps, 1000)
	defer stop2()
	again := do(t, w2, "purchase_license", buy)
	require.Nil(t, again.Err, "%v", again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Events, again.Events)
}

// TestRepeatedUsageAfterCompactionRepliesInFull: a usage sent again under a new command_id gets
// the whole first reply (a renewal it brought up to date included) after its record was
// compacted, not only the UsageRecorded event.
func TestRepeatedUsageAfterCompactionRepliesInFull(t *testing.T) {
	r := newRig(t)
	w, stop := r.start(t, r.snaps, 1000)
	require.Nil(t, do(t, w, "purchase_payg_contract", map[string]any{"command_id": "buy", "account_id": "A", "contract_id": "P"}).Err)
	require.Nil(t, do(t, w, "activate_payg_contract", map[string]any{"command_id": "act", "account_id": "A", "contract_id": "P"}).Err)
	require.Nil(t, do(t, w, "switch_billing_model", map[string]any{"command_id": "sw", "account_id": "A", "feature": "file_security", "to": "payg"}).Err)
	require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "lic", "account_id": "A", "license_id": "L", "source": "sales",
		"credits": "10", "auto_renew": true, "contract_start": "2025-03-01T00:00:01Z"}).Err)
	stop()
	r.clock = fixedClock{time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)} // the license's year is over
	usage := func(cmd string) map[string]any {
		return map[string]any{"command_id": cmd, "account_id": "A", "usage_id": "u1", "feature": "file_security",
			"quantity": "2", "unit": "gb", "occurred_at": "2026-03-01T00:30:00Z"}
	}
	w, stop = r.start(t, r.snaps, 1000)
	first := do(t, w, "record_usage", usage("r1"))
	require.Nil(t, first.Err)
	require.Len(t, first.Events, 2, "the renewal, then the usage")
	stop()
	w, stop = r.start(t, r.snaps, 1000)
	defer stop()
	again := do(t, w, "record_usage", usage("r2"))
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	again.Replayed = false
	assert.Equal(t, first, again)
}

// TestRecordsSurviveAccountRereads: re-reading accounts (after a conflict with another writer)
// neither lists a command's events twice nor hands a subscription move's record to the former
// holder, so retries still get the first reply.
func TestRecordsSurviveAccountRereads(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.startSecond(t)
	defer stop1()
	w2, stop2 := r.startSecond(t)
	defer stop2()
	buy := map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L1", "source": "sales", "credits": "100"}
	bought := do(t, w2, "purchase_license", buy)
	require.Nil(t, bought.Err)
	link := map[string]any{"command_id": "link-a", "account_id": "C", "subscription_id": "S", "marketplace": "aws"}
	require.Nil(t, do(t, w2, "link_subscription", link).Err)
	move := map[string]any{"command_id": "link-b", "account_id": "B", "subscription_id": "S", "marketplace": "aws"}
	moved := do(t, w2, "link_subscription", move)
	require.Nil(t, moved.Err)

	// w1 appends to all three accounts, so w2 re-reads each before its next command there.
	require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "buy9", "account_id": "acme", "license_id": "L9", "source": "sales", "credits": "1"}).Err)
	for _, acct := range []string{"B", "C"} {
		require.Nil(t, do(t, w1, "purchase_payg_contract", map[string]any{"command_id": "p-" + acct, "account_id": acct, "contract_id": "P-" + acct}).Err)
		do(t, w2, "allocate_credits", map[string]any{"command_id": "x-" + acct, "account_id": acct, "feature": "file_security", "credits": "1"})
	}
	for _, c := range []struct {
		name string
		body map[string]any
		want writer.Result
	}{{"purchase_license", buy, bought}, {"link_subscription", move, moved}} {
		again := do(t, w2, c.name, c.body)
		require.Nil(t, again.Err, "%s: %v", c.name, again.Err)
		assert.True(t, again.Replayed)
		again.Replayed = false
		assert.Equal(t, c.want, again, c.name)
	}
}
