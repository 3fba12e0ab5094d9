package productiontest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// Issue 12: a lease lost while the owner is stalled between its ownership check and its publish
// (a paused process). The account's head does not move meanwhile (the new owner only rejects),
// so the per-account expected sequence cannot tell the old owner's append is late: the
// partition's fence does. a decides an AWS activation inside the four-hour window and stalls
// before publishing; b, whose clock is five hours on, takes the partition over and rejects the
// same command_id (window expired), and rejects another command on the account. When a
// resumes, the server refuses its append: the command's one answer is b's rejection, the
// account's chain holds no activation, and a drops the partition.
func TestStalledOwnerIsFencedByTheServer(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	appends, leases := &gate{}, &gate{}
	a := start(t, sharedNode(t, url, "a", &server.Hooks{BeforeAppend: appends.pass, BeforeLeaseStep: leases.pass}))
	bCfg := sharedNode(t, url, "b", nil)
	bClock, ok := bCfg.Clock.(*server.ManualClock)
	require.True(t, ok)
	b := start(t, bCfg)
	waitSplit(t, a, b)
	acct := accountOn(t, a, "fence")
	nc := connectTo(t, url)
	cl := client(t, nc)
	ctx := ctxT(t)
	buy := purchase("fe-buy", acct, "fe-L1", "100")
	buy.Source = ledger.SourceAWS
	_, err := cl.PurchaseLicense(ctx, buy)
	require.NoError(t, err)
	part := ledger.PartitionOf(acct, a.PartitionCount())
	tenure, ok := a.Tenure(part)
	require.True(t, ok)
	failedBefore := a.WriterStats().FailedAppends
	bClock.Advance(5 * time.Hour) // past the AWS activation window, on b only

	// Stall a after it decided the activation (accepted: a's clock is inside the window).
	leases.close(t)
	appends.close(t)
	act := activate("fe-act", acct, "fe-L1")
	stalled := make(chan error, 1)
	go func() {
		_, err := cl.ActivateLicense(context.Background(), act)
		stalled <- err
	}()
	require.Eventually(t, func() bool { return appends.waiting.Load() > 0 }, waitFor, pollTick, "a's append never started")

	// b takes the partition over (its fence is written) and answers on the account.
	require.Eventually(t, func() bool { return holds(b, acct) }, 3*waitFor, pollTick, "b never took the partition over")
	_, err = cl.ActivateLicense(ctx, act)
	require.Equal(t, ledger.CodeActivationWindowExpired, code(err), "b's answer: %v", err)
	_, err = cl.AllocateCredits(ctx, allocate("fe-alloc", acct, "10"))
	require.Equal(t, ledger.CodeInsufficientCredits, code(err), "b's answer: %v", err)
	fence := lastFence(t, nc, part)
	assert.Equal(t, "b", fence.Owner, "b fenced the partition")

	// a resumes with the activation decided on its stale view: the server refuses it.
	appends.open()
	leases.open()
	select {
	case err := <-stalled:
		assert.Equal(t, ledger.CodeActivationWindowExpired, code(err), "the stalled command's answer is b's: %v", err)
	case <-time.After(2 * waitFor):
		t.Fatal("the stalled command was never answered")
	}
	// The answer can come before a's append resumes: a forward attempt that a held for more
	// than 2 s is sent again, and b answers it. a's append is refused whenever it lands.
	require.Eventually(t, func() bool { return a.WriterStats().FailedAppends > failedBefore },
		waitFor, pollTick, "a's late append was refused")
	require.Eventually(t, func() bool {
		now, held := a.Tenure(part)
		return !held || now != tenure
	}, waitFor, pollTick, "a still holds the partition in the tenure it lost")
	_, err = cl.ActivateLicense(ctx, act)
	assert.Equal(t, ledger.CodeActivationWindowExpired, code(err), "a retry gets the one answer: %v", err)

	// One chain: the purchase alone, version 1 once; no activation anywhere.
	var mine []storedEvent
	for _, ev := range readAll(t, nc) {
		if ev.AccountID == acct {
			mine = append(mine, ev)
		}
	}
	require.Len(t, mine, 1, "%+v", mine)
	assert.Equal(t, uint64(1), mine[0].Version)
	assert.Equal(t, events.TypeLicensePurchased, mine[0].Type)
}

// lastFence reads partition p's last ownership record from the LEDGER stream.
func lastFence(t *testing.T, nc *nats.Conn, p int) ledger.Fence {
	f, _ := lastFenceAt(t, nc, p)
	return f
}

// lastFenceAt is lastFence with the record's position in the stream.
func lastFenceAt(t *testing.T, nc *nats.Conn, p int) (ledger.Fence, uint64) {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(ctxT(t), jetstore.FenceSubject(p))
	require.NoError(t, err)
	f, err := ledger.DecodeFence(m.Data)
	require.NoError(t, err)
	return f, m.Sequence
}
