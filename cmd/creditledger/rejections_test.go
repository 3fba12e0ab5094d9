package main

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// `rejections accept-loss` records the rejection log there is now (creating it when it is
// missing), so that the ledger starts again on a store whose log was deleted; a second run finds
// nothing lost.
func TestRejectionsAcceptLoss(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	url := l.ClientURL()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(context.Background(), jetstore.RejectionStream))

	code, out, errOut := cli(t, "rejections", "accept-loss", "--nats-url", url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "the ledger may start")
	_, err = js.Stream(context.Background(), jetstore.RejectionStream)
	require.NoError(t, err, "created again, empty")
	code, out, errOut = cli(t, "rejections", "accept-loss", "--nats-url", url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "nothing was lost")
	l.Restart(t) // on the log recorded now (a start on the deleted one is refused: jetstore tests)
}

// Pointed at a nats-server that holds no ledger, `rejections accept-loss` creates nothing and
// says so (jetstore.Open would have made an empty LEDGER and rejection log there; review13).
func TestRejectionsAcceptLossNeedsALedger(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	code, _, errOut := cli(t, "rejections", "accept-loss", "--nats-url", ns.ClientURL())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "no ledger here")
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	names := js.StreamNames(context.Background())
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	assert.Empty(t, got, "no stream was created")
}
