package server

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/authz"
)

// TestClusterRoutesMustAuthenticate: a cluster node with an access config but no route user
// does not start (ErrOpenRoutes). It used to: a stranger's server dialled its route listener,
// joined, and its client published into the ledger's own inbox, which no user of the access
// config may. With a route user, a stranger's server without it is refused, one with it joins.
func TestClusterRoutesMustAuthenticate(t *testing.T) {
	t.Parallel()
	const users = `
nats:
  users:
    - {role: ledger, user: ledger, password: "a-long-ledger-password-for-tests"}
    - {role: dashboard, user: dashboard, password: "a-long-dashboard-password-for-tests"}
`
	node := func(doc string, log zerolog.Logger) (*natsserver.Server, error) {
		cfg, err := authz.Parse([]byte(doc), false)
		require.NoError(t, err)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		listen := l.Addr().String()
		require.NoError(t, l.Close())
		ns, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: t.TempDir(), Auth: cfg, Log: log, ServerName: "n1",
			Cluster: ClusterConfig{Name: "ledger-test", Listen: listen, Routes: []string{"nats://" + listen}}})
		if err == nil {
			t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		}
		return ns, err
	}
	// stranger is a server of anyone's that dials the node's route listener as user (none: "").
	stranger := func(ns *natsserver.Server, user string) *natsserver.Server {
		u := &url.URL{Scheme: "nats", Host: ns.ClusterAddr().String()}
		if user != "" {
			u.User = url.UserPassword(user, "a-long-route-password-for-tests")
		}
		s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "ledger-test", Host: "127.0.0.1", Port: -1}, Routes: []*url.URL{u}})
		require.NoError(t, err)
		s.Start()
		require.True(t, s.ReadyForConnections(10*time.Second))
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		return s
	}

	ns, err := node(users, zerolog.Nop())
	if !assert.ErrorIs(t, err, ErrOpenRoutes) {
		// What the refusal prevents: the stranger joins and publishes where no user may.
		s := stranger(ns, "")
		led, err := nats.Connect(ns.ClientURL(), nats.UserInfo("ledger", "a-long-ledger-password-for-tests"), nats.CustomInboxPrefix("_INBOX_ledger"))
		require.NoError(t, err)
		defer led.Close()
		inbox, err := led.SubscribeSync("_INBOX_ledger.x")
		require.NoError(t, err)
		require.NoError(t, led.Flush())
		spy, err := nats.Connect(s.ClientURL())
		require.NoError(t, err)
		defer spy.Close()
		joined := assert.Eventually(t, func() bool {
			_ = spy.Publish("_INBOX_ledger.x", []byte("forged"))
			_, err := inbox.NextMsg(50 * time.Millisecond)
			return err == nil
		}, 10*time.Second, 10*time.Millisecond)
		t.Fatalf("the node started with open routes; a stranger's server joined it and published into the ledger's inbox: %v", joined)
	}

	var sink lockedBuffer
	ns, err = node(users+"  cluster: {user: route, password: \"a-long-route-password-for-tests\"}\n", zerolog.New(&sink))
	require.NoError(t, err)
	stranger(ns, "")
	require.Eventually(t, func() bool { return strings.Contains(strings.ToLower(sink.String()), "authentication error") },
		10*time.Second, 10*time.Millisecond, "the stranger's route was never refused: %s", sink.String())
	assert.Zero(t, ns.NumRoutes(), "a server without the route user joined")
	stranger(ns, "route")
	require.Eventually(t, func() bool { return ns.NumRoutes() > 0 }, 10*time.Second, 10*time.Millisecond,
		"a server with the route user never joined")
}
