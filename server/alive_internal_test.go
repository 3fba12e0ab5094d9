package server

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/partition"
)

// TestAliveProbe: on two routed NATS servers, a node's responder answers probes (up), from
// either server; a node that never subscribed, one whose connection closed and one whose server
// shut down (a killed embedded node) are down (no responders); a probe sent with a reply subject
// outside the responders' inbox is not answered (unknown, at its timeout).
func TestAliveProbe(t *testing.T) {
	t.Parallel()
	s1, s2 := coreServer(t, ""), (*natsserver.Server)(nil)
	s2 = coreServer(t, s1.ClusterAddr().String())
	require.Eventually(t, func() bool { return s1.NumRoutes() > 0 && s2.NumRoutes() > 0 }, 10*time.Second, 10*time.Millisecond)
	dial := func(s *natsserver.Server, opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(s.ClientURL(), opts...)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
	responder := nats.CustomInboxPrefix(authz.ResponderInboxPrefix)
	// c does not reconnect: it dies with its server, as a killed embedded node's connections do
	// (one that reconnected to s1 would answer again, and rightly so).
	a, b, c := dial(s1, responder), dial(s2, responder), dial(s2, responder, nats.NoReconnect())
	for nc, name := range map[*nats.Conn]string{a: "n1", b: "n2.example.com", c: "n3"} {
		_, err := serveAlive(nc, name)
		require.NoError(t, err)
		require.NoError(t, nc.Flush())
	}
	probe := probeAlive(a)
	ask := func(p func(context.Context, string) (partition.Liveness, error), node string) partition.Liveness {
		ctx, cancel := context.WithTimeout(context.Background(), probeWait)
		defer cancel()
		l, _ := p(ctx, node)
		return l
	}
	eventually := func(node string, want partition.Liveness) {
		t.Helper()
		require.Eventually(t, func() bool { return ask(probe, node) == want }, 10*time.Second, 20*time.Millisecond,
			"%s never answered %v", node, want)
	}
	eventually("n1", partition.NodeUp) // itself
	eventually("n2.example.com", partition.NodeUp)
	eventually("n3", partition.NodeUp)
	assert.Equal(t, partition.NodeDown, ask(probe, "n4"), "never started")

	other := dial(s1) // the default _INBOX: not another node's responder
	assert.Equal(t, partition.NodeUnknown, ask(probeAlive(other), "n1"), "answered only into the responders' inbox")

	b.Close()
	eventually("n2.example.com", partition.NodeDown)
	s2.Shutdown()
	s2.WaitForShutdown()
	eventually("n3", partition.NodeDown)
	assert.Equal(t, partition.NodeUp, ask(probe, "n1"))
}

// A node name is its own token when it is one plain subject token, else a hash of it.
func TestAliveSubjectNamesOneToken(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "ledger.node.node-1_a.alive", AliveSubject("node-1_a"))
	for _, name := range []string{"host.example.com", "a*b", "a>b", "a b", "", "é"} {
		s := AliveSubject(name)
		tokens := strings.Split(s, ".")
		require.Len(t, tokens, 4, s)
		assert.Regexp(t, "^h[0-9a-f]{32}$", tokens[2], name)
	}
	assert.NotEqual(t, AliveSubject("a.b"), AliveSubject("a.c"))
}

// probeWait bounds one probe of these tests: an answer that should come must come within it on a
// loaded 2-core -race run (300 ms was not always enough), and "unknown" is what is left after it.
const probeWait = 2 * time.Second

// coreServer starts a NATS server without JetStream, routed to route when it is not empty.
func coreServer(t *testing.T, route string) *natsserver.Server {
	t.Helper()
	o := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Cluster: natsserver.ClusterOpts{Name: "alive", Host: "127.0.0.1", Port: -1}}
	if route != "" {
		o.Routes = natsserver.RoutesFromStr("nats://" + route)
	}
	s, err := natsserver.NewServer(o)
	require.NoError(t, err)
	s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// A probe's "down" proves that the prober's server knows no subscription of the node, not that
// the node is dead: with the route between two servers closed, a node alive on the other server,
// still answering there, is down to this one (partition/seize.go: why a seized lease waits for
// its holder's lease clock, and is taken only from a holder that stopped renewing).
func TestAliveProbeDownAcrossAClosedRoute(t *testing.T) {
	t.Parallel()
	s1 := coreServer(t, "")
	cut := routeProxy(t, s1.ClusterAddr().String())
	s2 := coreServer(t, cut.addr)
	require.Eventually(t, func() bool { return s1.NumRoutes() > 0 && s2.NumRoutes() > 0 }, 10*time.Second, 10*time.Millisecond)
	responder := nats.CustomInboxPrefix(authz.ResponderInboxPrefix)
	var conns []*nats.Conn
	for _, s := range []*natsserver.Server{s1, s2} {
		nc, err := nats.Connect(s.ClientURL(), responder)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		conns = append(conns, nc)
	}
	_, err := serveAlive(conns[1], "n2")
	require.NoError(t, err)
	require.NoError(t, conns[1].Flush())
	ask := func(nc *nats.Conn) partition.Liveness {
		ctx, cancel := context.WithTimeout(context.Background(), probeWait)
		defer cancel()
		l, _ := probeAlive(nc)(ctx, "n2")
		return l
	}
	require.Eventually(t, func() bool { return ask(conns[0]) == partition.NodeUp }, 10*time.Second, 20*time.Millisecond)

	cut.close()
	require.Eventually(t, func() bool { return ask(conns[0]) == partition.NodeDown }, 10*time.Second, 20*time.Millisecond,
		"n2 is down to s1 while the route is closed")
	assert.Equal(t, partition.NodeUp, ask(conns[1]), "n2 is alive and answers on its own server")
}

// tcpCut passes TCP connections to a target until closed; then it closes them and refuses more.
type tcpCut struct {
	addr string
	mu   sync.Mutex
	cut  bool
	open []net.Conn
}

// routeProxy passes connections to target (a server's route port) until the returned cut closes.
func routeProxy(t *testing.T, target string) *tcpCut {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	c := &tcpCut{addr: ln.Addr().String()}
	t.Cleanup(c.close)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil || !c.keep(in, out) {
				_ = in.Close()
				if out != nil {
					_ = out.Close()
				}
				continue
			}
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	return c
}

func (c *tcpCut) keep(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return false
	}
	c.open = append(c.open, conns...)
	return true
}

func (c *tcpCut) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, conn := range c.open {
		_ = conn.Close()
	}
	c.open = nil
}
