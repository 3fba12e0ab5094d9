package writer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
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
