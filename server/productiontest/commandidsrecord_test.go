package productiontest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// TestRecordedCommandIDsCloseTheGap: a lone embedded node (no cluster, no --nats-url) records no
// command id while it owns every partition. Once a second process joins it and takes partitions,
// a command_id the lone node decided, accepted or rejected, is decided afresh there for another
// account (the gap: docs/OPERATIONS.md, known limitations). `command-ids record`
// (server.RecordCommandIDs) records them from the streams: from then on such a reuse is refused
// idempotency_key_reused. The reuse decided during the gap is reported and left as it is; a
// second run records nothing new and reports the same; a window past every message reads nothing.
func TestRecordedCommandIDsCloseTheGap(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	cfg.ServerName, cfg.HTTPListen = "a", ""
	cfg.Partitions = server.PartitionConfig{LeaseTTL: testLeaseTTL, Tick: testLeaseTick}
	cfg.Checkpoints.Disabled = true
	a := start(t, cfg)
	require.Eventually(t, func() bool { return len(a.Partitions()) == a.PartitionCount() }, waitFor, pollTick)
	url := a.ClientURL()
	cl := client(t, connectTo(t, url))
	ctx := ctxT(t)
	const accounts = 16
	for i := range accounts {
		acct := fmt.Sprintf("lone-%d", i)
		_, err := cl.PurchaseLicense(ctx, purchase("lone-buy-"+acct, acct, acct+"-L", "10"))
		require.NoError(t, err)
		_, err = cl.AllocateCredits(ctx, allocate("lone-over-"+acct, acct, "500"))
		require.Equal(t, ledger.CodeInsufficientCredits, code(err), "%v", err)
	}

	b := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b)
	onB := accountOn(t, b, "joined")
	var stayed []string // accounts a still writes: b's own memory knows nothing of their commands
	for i := range accounts {
		if acct := fmt.Sprintf("lone-%d", i); !holds(b, acct) {
			stayed = append(stayed, acct)
		}
	}
	require.GreaterOrEqual(t, len(stayed), 2, "too few accounts stayed with a")
	gap := "lone-buy-" + stayed[0]
	_, err := cl.PurchaseLicense(ctx, purchase(gap, onB, "gap-L", "10"))
	require.NoError(t, err, "the gap: decided alone, unrecorded, reused for an account of b")

	nc := connectTo(t, url)
	got, err := server.RecordCommandIDs(ctx, nc, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 2*accounts-1, got.Recorded, "every command the lone node decided but the reused one")
	assert.Equal(t, 1, got.Found, "the reuse, which b recorded for its account")
	require.Len(t, got.Conflicts, 1)
	assert.Contains(t, got.Conflicts[0], fmt.Sprintf("command_id %q: held by %s, used for %s at LEDGER position", gap, onB, stayed[0]))
	assert.NotZero(t, got.Events.From)
	assert.NotZero(t, got.Rejections.From)
	assert.False(t, got.NoRejectionLog)

	for _, acct := range stayed[1:] {
		_, err := cl.PurchaseLicense(ctx, purchase("lone-buy-"+acct, onB, acct+"-other", "10"))
		assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "accepted by the lone node for %s, reused for %s: %v", acct, onB, err)
	}
	for _, acct := range stayed {
		_, err := cl.AllocateCredits(ctx, allocate("lone-over-"+acct, onB, "5"))
		assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "rejected by the lone node for %s, reused for %s: %v", acct, onB, err)
	}

	again, err := server.RecordCommandIDs(ctx, nc, time.Now())
	require.NoError(t, err)
	assert.Zero(t, again.Recorded, "nothing new")
	assert.Equal(t, got.Recorded+got.Found, again.Found)
	assert.Equal(t, got.Conflicts, again.Conflicts, "the reuse in the history, reported again and still left as it is")

	later, err := server.RecordCommandIDs(ctx, nc, time.Now().Add(jetstore.CommandRetention+time.Hour))
	require.NoError(t, err)
	assert.Zero(t, later.Events.From, "every event is older than the window")
	assert.Zero(t, later.Rejections.From, "every rejection is older than the window")
	assert.Zero(t, later.Recorded+later.Found)
}

// TestRecordCommandIDsNeedsALedger: pointed at a server without the LEDGER stream (a wrong
// --nats-url), RecordCommandIDs refuses and creates nothing, the bucket included.
func TestRecordCommandIDsNeedsALedger(t *testing.T) {
	t.Parallel()
	empty, err := nats.Connect(jetStreamServer(t))
	require.NoError(t, err)
	defer empty.Close()
	_, err = server.RecordCommandIDs(ctxT(t), empty, time.Now())
	assert.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	assert.ErrorContains(t, err, "no ledger here")
	js, err := jetstream.New(empty)
	require.NoError(t, err)
	var names []string
	for n := range js.StreamNames(context.Background()).Name() {
		names = append(names, n)
	}
	assert.Empty(t, names, "no stream (nor bucket) was created")
}
