package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestProjectionPassesOwnershipRecords: a partition ownership record at the stream's head holds
// no event, yet read-your-writes and the lag must treat its position as reached. Before the
// projector followed ledger.fence.>, a min_position at that position waited out the query's
// bound (unavailable) and /readyz reported one event of lag for as long as no event followed.
func TestProjectionPassesOwnershipRecords(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "fence-pass")
	a.activeLicense("FP-1", "100")

	rec, err := ledger.EncodeFence(ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 7, Owner: "node-x",
		Partition: 3, Partitions: ledger.DefaultPartitions, Time: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ack, err := js.Publish(ctx, jetstore.FenceSubject(3), rec)
	require.NoError(t, err)
	require.Equal(t, ack.Sequence, streamHead(t, l), "the record is the head")

	b := getBalance(t, l, "fence-pass", ack.Sequence) // fails the test on unavailable
	assertDec(t, "100", b.TotalCredits)
	require.Eventually(t, func() bool {
		status, body := httpGet(t, l.HTTPURL()+"/readyz")
		var r struct {
			Lag *uint64 `json:"lag_events"`
		}
		return status == 200 && json.Unmarshal(body, &r) == nil && r.Lag != nil && *r.Lag == 0
	}, eventuallyWait, eventuallyTick, "no lag once the projector passed the record")
}
