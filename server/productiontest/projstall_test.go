package productiontest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/server"
)

// proxiedNode is one ledger whose connections to its nats-server pass through a faultProxy, and
// a client connected to the nats-server directly, with one funded account.
type proxiedNode struct {
	cfg   server.Config
	n     *server.Server
	ns    *restartableNATS
	proxy *faultProxy
	nc    *nats.Conn
	cl    *commands.Client
	acct  string
}

// startProxiedNode starts a proxiedNode whose config adjust changes (nil: none) once it owns
// every partition and serves.
func startProxiedNode(t *testing.T, credits string, adjust func(*server.Config)) proxiedNode {
	t.Helper()
	ns := newRestartableNATS(t)
	proxy := newFaultProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.opts.Port))
	cfg := sharedNode(t, proxy.url(), "a", nil)
	if adjust != nil {
		adjust(&cfg)
	}
	n := start(t, cfg)
	require.Eventually(t, func() bool { return len(n.Partitions()) == n.PartitionCount() }, waitFor, pollTick)
	nc, err := nats.Connect(ns.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	waitServing(t, nc)
	cl := client(t, nc)
	acct := fundAccounts(t, cl, "ps", 1, credits)[0]
	return proxiedNode{cfg: cfg, n: n, ns: ns, proxy: proxy, nc: nc, cl: cl, acct: acct}
}

// stallThenCut stalls the ledger's connection (nothing forwarded either way) long enough for its
// ordered consumers to miss their heartbeats and ask for new consumers into the stall, then cuts
// it; the ledger reconnects. It returns the stream head once a command was accepted through the
// reconnected ledger, and when the cut was.
func (pn proxiedNode) stallThenCut(t *testing.T) (head uint64, cut time.Time) {
	t.Helper()
	pn.proxy.Hold(true, true)
	held := time.Now()
	// A fault that lasts 4 s: past two missed heartbeats (1 s each), so the consumers' reset
	// requests go out into the stall and are lost with it.
	require.Eventually(t, func() bool { return time.Since(held) > 4*time.Second }, 10*time.Second, pollTick)
	pn.proxy.Cut()
	pn.proxy.Reopen()
	cut = time.Now()
	_, ok, err := sendUntilAcked(pn.cl, allocate("after-cut", pn.acct, "1"), nil) // while the ledger reconnects
	require.NoError(t, err)
	require.True(t, ok)
	return pn.n.Head(), cut
}

// The ledger's connection stalls, then is cut; the ledger reconnects. The projector must follow
// the stream again once the connection is back, not after the lost request's own timeout and
// nats.go's back-off (review11 saw read models stay behind for 20-30 s while the writer appended
// and answered).
func TestProjectorFollowsAgainAfterACutConnection(t *testing.T) {
	t.Parallel()
	pn := startProxiedNode(t, "10", nil)
	require.Eventually(t, func() bool { return pn.n.Projector().Position() >= pn.n.Head() }, waitFor, pollTick)
	head, cut := pn.stallThenCut(t)
	// Within 5 s of the cut: the ledger is connected again by then (the command was accepted
	// through it), and nats.go's consumer alone came back 9.0 s after the cut, every run (its
	// request into the stall timing out at 10 s); following again at the reconnect: 0.3 s.
	require.Eventually(t, func() bool { return pn.n.Projector().Position() >= head }, 5*time.Second-time.Since(cut), pollTick,
		"the read models stay behind the stream after the reconnect")
}
