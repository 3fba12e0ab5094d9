package server

import (
	"context"
	"strings"
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
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
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
