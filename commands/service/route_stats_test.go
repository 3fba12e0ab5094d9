package service_test

import (
	"encoding/json"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/internal/microsvc"
)

// router puts every account in partition 0, owned here or not.
type router struct{ local bool }

func (router) Partition(string) int { return 0 }
func (r router) Local(string) bool  { return r.local }

// connector starts a plain nats-server (no JetStream: the forwarding tests need none) and
// returns a function that opens a connection to it, closed when the test ends.
func connector(t *testing.T) func() *nats.Conn {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return func() *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
}

// TestRelayedRejectionsCount: a command passed to its partition's owner comes back unchanged,
// and the node that relays a rejection counts it in its $SRV.STATS like its own.
func TestRelayedRejectionsCount(t *testing.T) {
	t.Parallel()
	conn := connector(t)
	ownerNC, frontNC, nc := conn(), conn(), conn()

	owner, err := service.New(fakeWriter{}, zerolog.Nop())
	require.NoError(t, err)
	sub, err := owner.ServeOwner(ownerNC, 0, router{local: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, ownerNC.Flush())

	front, err := service.New(fakeWriter{}, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, front.Route(router{local: false}, frontNC, time.Minute)) // the owner serves: no wait is expected
	svc, err := microsvc.Add(frontNC, microsvc.Config{Name: commands.ServiceName, Version: "1.2.3", StatsHandler: front.EndpointStats})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, front.Register(svc))
	require.NoError(t, frontNC.Flush())

	ok := send(t, nc, "allocate_credits", body("allocate_credits", "f1"))
	assert.Empty(t, ok.Header.Get(micro.ErrorCodeHeader))
	rel := send(t, nc, "release_credits", body("release_credits", "f2"))
	assert.Equal(t, "insufficient_allocation", rel.Header.Get(micro.ErrorCodeHeader))
	assert.Equal(t, "release 5 of 0 allocated", rel.Header.Get(micro.ErrorHeader))
	assert.JSONEq(t, `{"ok":false,"error":{"code":"insufficient_allocation","message":"release 5 of 0 allocated",`+
		`"data":{"allocated":"0","requested":"5"}}}`, string(rel.Data))

	msg, err := nc.Request("$SRV.STATS."+commands.ServiceName, nil, 5*time.Second)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(msg.Data, &stats))
	byName := map[string]*micro.EndpointStats{}
	for _, e := range stats.Endpoints {
		byName[e.Name] = e
	}
	assert.Equal(t, 1, byName["allocate_credits"].NumRequests)
	assert.Zero(t, byName["allocate_credits"].NumErrors)
	assert.Equal(t, 1, byName["release_credits"].NumErrors)
	assert.Equal(t, "insufficient_allocation:release 5 of 0 allocated", byName["release_credits"].LastError)
}
