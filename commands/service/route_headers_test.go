package service_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/internal/microsvc"
)

// TestForwardCarriesNoClientHeaders: on a server with the access config's permissions (the
// service role, the responder), a command sent to a node that does not own its account with a
// Nats-Trace-Dest header naming a subject the service may publish to (its own command subject)
// is decided by the owner and answered at once. The server checks a message's trace destination
// against its publisher's permissions: when the front passed the client's headers on, the
// responder's forward named a destination the responder may not publish to, the server dropped
// every attempt, and the command waited out the forward wait (holding a forward slot) to be
// answered unavailable.
func TestForwardCarriesNoClientHeaders(t *testing.T) {
	t.Parallel()
	cfg, err := authz.Parse([]byte(`
nats:
  users:
    - {role: ledger, user: ledger, password: "a-long-ledger-password-for-tests"}
    - {role: service, user: orders, password: "a-long-service-password-for-tests"}
`), false)
	require.NoError(t, err)
	resp, err := authz.NewResponder()
	require.NoError(t, err)
	users, nkeys, err := cfg.ServerUsers(resp)
	require.NoError(t, err)
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: users, Nkeys: nkeys})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	var mu sync.Mutex
	var violations []string
	dial := func(opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			defer mu.Unlock()
			violations = append(violations, err.Error())
		}))...)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
	ownerNC, frontNC := dial(resp.Options()...), dial(resp.Options()...)
	nc := dial(nats.UserInfo("orders", "a-long-service-password-for-tests"), nats.CustomInboxPrefix(authz.InboxPrefixBase+"orders"))

	owner, err := service.New(fakeWriter{}, zerolog.Nop())
	require.NoError(t, err)
	sub, err := owner.ServeOwner(ownerNC, 0, router{local: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, ownerNC.Flush())
	front, err := service.New(fakeWriter{}, zerolog.Nop())
	require.NoError(t, err)
	const wait = 10 * time.Second // the owner answers in milliseconds; a dropped forward waits all of it
	require.NoError(t, front.Route(router{local: false}, frontNC, wait))
	svc, err := microsvc.Add(frontNC, microsvc.Config{Name: commands.ServiceName, Version: "1.2.3"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, front.Register(svc))
	require.NoError(t, frontNC.Flush())

	for _, dest := range []string{"", commands.Subject("allocate_credits")} {
		m := nats.NewMsg(commands.Subject("allocate_credits"))
		m.Data = []byte(body("allocate_credits", "trace-"+dest))
		if dest != "" {
			m.Header.Set("Nats-Trace-Dest", dest)
		}
		began := time.Now()
		ans, err := nc.RequestMsg(m, 2*wait)
		require.NoError(t, err)
		assert.Empty(t, ans.Header.Get(micro.ErrorCodeHeader), "trace destination %q: %s", dest, ans.Data)
		assert.Contains(t, string(ans.Data), `"ok":true`)
		assert.Less(t, time.Since(began), wait, "trace destination %q: answered by the owner, not at the end of the wait", dest)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		assert.False(t, strings.Contains(v, "Publish"), "a publish was refused: %s", v)
	}
}
