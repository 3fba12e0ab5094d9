package projections_test

import (
	"context"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/logsignal"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
)

// A reconnect signalled while the store cannot make the projector's new consumer (here: its
// nats-server is down; after a real reconnect, one still starting) is not the projector's end:
// it asks again, and follows the stream once the store answers. Before, the failed request
// returned from Run, and the read models stayed where they were for the rest of the process.
func TestProjectorOutlivesAStoreThatCannotFollowYet(t *testing.T) {
	t.Parallel()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	ns := startServer(t, opts)
	opts.Port = ns.Addr().(*net.TCPAddr).Port // the restart listens where the client reconnects

	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(300*time.Millisecond)) // a refused request ends soon
	require.NoError(t, err)
	stream, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	record := func() uint64 { // an ownership record: a position the projector passes
		t.Helper()
		var pos uint64
		require.Eventually(t, func() bool {
			ack, err := js.Publish(ctx, "ledger.fence.0", []byte("{}"))
			if err == nil {
				pos = ack.Sequence
			}
			return err == nil
		}, 20*time.Second, 50*time.Millisecond, "the store never took a record")
		return pos
	}

	warned := logsignal.New("cannot follow the stream yet")
	p := projections.NewProjector(zerolog.New(warned))
	again := make(chan struct{}, 1)
	runCtx, stop := context.WithCancel(context.Background()) // no deadline, as the server runs it
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(runCtx, stream, again) }()
	require.NoError(t, p.WaitFor(ctx, record()))

	ns.Shutdown()
	ns.WaitForShutdown()
	again <- struct{}{} // as the reconnect handler signals
	select {
	case err := <-ran:
		t.Fatalf("the projector stopped when the store could not make its consumer: %v", err)
	case <-warned.Seen():
	case <-ctx.Done():
		t.Fatal("the projector never asked for a consumer")
	}

	startServer(t, opts)
	require.NoError(t, p.WaitFor(ctx, record()), "the projector follows the stream once the store answers")
	stop()
	select {
	case <-ran:
	case <-ctx.Done():
		t.Fatal("Run never returned")
	}
}

// startServer starts a JetStream server with opts, shut down when the test ends.
func startServer(t *testing.T, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(opts)
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}
