package server_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// TestVCenterUsage (issue 16): record_usage says a computer is part of a vCenter account with
// "vcenter": true; it is billed at the data-center rate even under a cloud connector, the event
// says so, and the flag is part of both idempotency checks (command_id and usage_id).
func TestVCenterUsage(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	const acc = "pg-vcenter"
	pgPayg(t, l, acc, map[string]string{"advanced_server_workload_protection:large": "0.02"}, "advanced_server_workload_protection", "file_security")
	at := l.Clock.Now().Format(time.RFC3339Nano)
	l.Clock.Advance(time.Minute)
	body := func(cmdID, usageID string, extra map[string]any) map[string]any {
		b := map[string]any{"command_id": cmdID, "account_id": acc, "usage_id": usageID, "feature": "advanced_server_workload_protection",
			"quantity": "10", "unit": "hours", "occurred_at": at, "instance_size": "large", "cloud_connector": "aws"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	send := func(b map[string]any) error {
		_, err := l.Client.Send(pgCtx(t), "record_usage", b)
		return err
	}

	// Malformed or misplaced flags are invalid_argument and append nothing.
	head := pgHead(t, l)
	for name, b := range map[string]map[string]any{
		"a string":          body("vc-bad-1", "u-bad", map[string]any{"vcenter": "yes"}),
		"a number":          body("vc-bad-2", "u-bad", map[string]any{"vcenter": 1}),
		"on a flat feature": {"command_id": "vc-bad-3", "account_id": acc, "usage_id": "u-bad", "feature": "file_security", "quantity": "1", "unit": "gb", "occurred_at": at, "vcenter": true},
	} {
		assert.Equal(t, ledger.CodeInvalidArgument, pgCode(send(b)), name)
	}
	assert.Equal(t, head, pgHead(t, l), "rejections append nothing")

	require.NoError(t, send(body("vc-1", "u-vc", map[string]any{"vcenter": true})))
	require.NoError(t, send(body("vc-2", "u-cloud", nil)))
	byID := map[string]events.UsageRecorded{}
	for _, ev := range pgStream(t, l) {
		if u, ok := ev.Data.(events.UsageRecorded); ok {
			byID[u.UsageID] = u
		}
	}
	vc := byID["u-vc"]
	assert.True(t, vc.VCenter, "the event records the flag")
	assert.Equal(t, "aws", vc.CloudConnector)
	assert.Equal(t, "advanced_server_workload_protection:data_center", vc.RateKey)
	pgDec(t, "0.06", vc.Rate, "the data-center rate, not the contract's large rate")
	pgDec(t, "0.6", vc.Amount)
	assert.Contains(t, vc.RateReason, "part of a vCenter account pays the data-center rate whatever its size (large) and cloud connector (aws)")
	cloud := byID["u-cloud"]
	assert.False(t, cloud.VCenter)
	assert.Equal(t, "advanced_server_workload_protection:large", cloud.RateKey)
	pgDec(t, "0.2", cloud.Amount)

	// The same command_id: the same body is a replay, another vcenter flag is another body.
	head = pgHead(t, l)
	assert.NoError(t, send(body("vc-1", "u-vc", map[string]any{"vcenter": true})), "a retry is answered with the first reply")
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, pgCode(send(body("vc-1", "u-vc", map[string]any{"vcenter": false}))))
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, pgCode(send(body("vc-2", "u-cloud", map[string]any{"vcenter": true}))))
	assert.NoError(t, send(body("vc-2", "u-cloud", map[string]any{"vcenter": false})), "vcenter false is the default: the same body")
	// The same usage_id under a new command_id with another flag is other content.
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, pgCode(send(body("vc-3", "u-vc", nil))))
	assert.Equal(t, head, pgHead(t, l), "replays and reused keys append nothing")
}
