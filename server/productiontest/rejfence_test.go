package productiontest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/server"
)

// stoppableClock is a lease clock that runs with time.Now until it is stopped (a paused process
// whose monotonic clock did not move meanwhile), and from then on reads the instant it stopped.
type stoppableClock struct{ stopped atomic.Pointer[time.Time] }

func (c *stoppableClock) Now() time.Time {
	if at := c.stopped.Load(); at != nil {
		return *at
	}
	return time.Now()
}

func (c *stoppableClock) stop()   { now := time.Now(); c.stopped.Store(&now) }
func (c *stoppableClock) resume() { c.stopped.Store(nil) }

// Issue 12: a rejection is durable in a stream of its own, which the append fence does not
// reach, so the lease clock alone used to decide whether it was answered. a, whose clock is five
// hours on, rejects an AWS activation (window expired) and stalls while writing the rejection;
// its lease clock stops with it, so its lease table still says it owns the partition. b takes
// the partition over (fence, then load: the rejection is not in the log yet) and would accept
// the activation. When a resumes, its rejection lands, but the fence read after it finds b's
// ownership record: a does not answer; the command goes to b, whose answer (accepted) is the
// one answer the client ever gets. Without the fence check a answers activation_window_expired
// while b accepts a retry of the same command_id.
func TestStalledOwnersRejectionIsNotAnswered(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	rejections, leases := &gate{}, &gate{}
	leaseClock := &stoppableClock{}
	aCfg := sharedNode(t, url, "a", &server.Hooks{BeforeRejections: rejections.pass, BeforeLeaseStep: leases.pass,
		LeaseClock: leaseClock.Now})
	aClock, ok := aCfg.Clock.(*server.ManualClock)
	require.True(t, ok)
	a := start(t, aCfg)
	b := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b)
	acct := accountOn(t, a, "rejfence")
	nc := connectTo(t, url)
	cl := client(t, nc)
	ctx := ctxT(t)
	buy := purchase("rf-buy", acct, "rf-L1", "100")
	buy.Source = ledger.SourceAWS
	_, err := cl.PurchaseLicense(ctx, buy)
	require.NoError(t, err)
	part := ledger.PartitionOf(acct, a.PartitionCount())
	aClock.Advance(5 * time.Hour) // past the AWS activation window, on a only

	// a stalls writing its rejection, its lease clock and lease steps stopped with it.
	t.Cleanup(func() { leaseClock.resume(); leases.open(); rejections.open() })
	leaseClock.stop()
	leases.close(t)
	rejections.close(t)
	act := activate("rf-act", acct, "rf-L1")
	stalled := make(chan error, 1)
	go func() {
		_, err := cl.ActivateLicense(context.Background(), act)
		stalled <- err
	}()
	require.Eventually(t, func() bool { return rejections.waiting.Load() > 0 }, waitFor, pollTick, "a's rejection write never started")

	// b takes the partition over and is deciding for it (its fence written, the log loaded).
	require.Eventually(t, func() bool { return b.Decides(acct) }, 3*waitFor, pollTick, "b never took the partition over")
	assert.Equal(t, "b", lastFence(t, nc, part).Owner, "b fenced the partition")
	require.True(t, a.Decides(acct), "a's lease table, on its stopped clock, still says it owns the partition")

	// a's rejection lands; the fence read after it finds b's record.
	rejections.open()
	select {
	case err := <-stalled:
		require.NoError(t, err, "the command's answer is b's (accepted), not a's rejection")
	case <-time.After(2 * waitFor):
		t.Fatal("the stalled command was never answered")
	}
	require.Eventually(t, func() bool { return !a.Decides(acct) }, waitFor, pollTick, "a still decides the partition it lost")
	res, err := cl.ActivateLicense(ctx, act)
	require.NoError(t, err, "a retry gets the one answer")
	assert.True(t, res.Replayed)

	// One chain: the purchase, then b's activation.
	var mine []storedEvent
	for _, ev := range readAll(t, nc) {
		if ev.AccountID == acct {
			mine = append(mine, ev)
		}
	}
	require.Len(t, mine, 2, "%+v", mine)
	assert.Equal(t, events.TypeLicensePurchased, mine[0].Type)
	assert.Equal(t, events.TypeLicenseActivated, mine[1].Type)
	assert.Equal(t, "rf-act", mine[1].CommandID)
}
