package productiontest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// The ledger's connection stalls (nothing forwarded either way) long enough for the projector's
// ordered consumer to miss its heartbeats and ask for a new consumer into the stall, then is
// cut; the ledger reconnects. The projector must follow the stream again once the connection is
// back, not after the lost request's own timeout and nats.go's back-off (review11 saw read models
// stay behind for 20-30 s while the writer appended and answered).
func TestProjectorFollowsAgainAfterACutConnection(t *testing.T) {
	t.Parallel()
	ns := newRestartableNATS(t)
	proxy := newFaultProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.opts.Port))
	n := start(t, sharedNode(t, proxy.url(), "a", nil))
	require.Eventually(t, func() bool { return len(n.Partitions()) == n.PartitionCount() }, waitFor, pollTick)
	nc, err := nats.Connect(ns.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	waitServing(t, nc)
	cl := client(t, nc)
	acct := smallAccounts(t, cl, "ps", 1)[0]
	require.Eventually(t, func() bool { return n.Projector().Position() >= n.Head() }, waitFor, pollTick)

	proxy.Hold(true, true)
	held := time.Now()
	// A fault that lasts 4 s: past two missed heartbeats (1 s each), so the consumer's reset
	// request goes out into the stall and is lost with it.
	require.Eventually(t, func() bool { return time.Since(held) > 4*time.Second }, 10*time.Second, pollTick)
	proxy.Cut()
	proxy.Reopen()
	cut := time.Now()
	_, ok, err := sendUntilAcked(cl, allocate("after-cut", acct, "1"), nil) // while the ledger reconnects
	require.NoError(t, err)
	require.True(t, ok)
	head := n.Head()
	// Within 5 s of the cut: the ledger is connected again by then (the command above was
	// accepted through it), and nats.go's consumer alone came back 9.0 s after the cut, every run
	// (its request into the stall timing out at 10 s); following again at the reconnect: 0.3 s.
	require.Eventually(t, func() bool { return n.Projector().Position() >= head }, 5*time.Second-time.Since(cut), pollTick,
		"the read models stay behind the stream after the reconnect")
}
