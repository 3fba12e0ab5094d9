package server

import (
	"context"
	"crypto/ed25519"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/logsignal"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// As the projector's (projections.TestProjectorOutlivesAStoreThatCannotFollowYet): a reconnect
// signalled while the store cannot make the publisher's new consumer (here its nats-server is
// down; after a real reconnect, one still starting) is not the publisher's end. It asks again,
// and once the store answers it follows on from where it was and signs the new head, a
// checkpoint consistent with the one before.
func TestCheckpointPublisherOutlivesAStoreThatCannotFollowYet(t *testing.T) {
	t.Parallel()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	ns := startJetStream(t, opts)
	opts.Port = ns.Addr().(*net.TCPAddr).Port // the restart listens where the client reconnects
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(300*time.Millisecond)) // a refused request ends soon
	require.NoError(t, err)
	record := func() uint64 { // an ownership record of partition 0: a message the chain verifies
		t.Helper()
		var pos uint64
		require.Eventually(t, func() bool {
			heads, err := st.FenceHeads(ctx, []int{0})
			if err != nil {
				return false
			}
			f := ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: heads[0] + 1, Owner: "n1", Partitions: st.Partitions(),
				Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			ps, err := st.Fence(ctx, []ledger.FenceClaim{{Fence: f, Expect: heads[0]}})
			if err == nil {
				pos = ps[0]
			}
			return err == nil
		}, 20*time.Second, 50*time.Millisecond, "the store never took a record")
		return pos
	}
	_, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	pub := key.Public().(ed25519.PublicKey)
	warned := logsignal.New("cannot follow the stream yet")
	p, err := newCheckpointPublisher(ctx, js, Config{Clock: SystemClock{}, Checkpoints: CheckpointConfig{Every: -1, Interval: -1}},
		key, zerolog.New(warned))
	require.NoError(t, err)
	again := make(chan struct{}, 1)
	p.again = again
	runCtx, stop := context.WithCancel(context.Background()) // no deadline, as the server runs it
	defer stop()
	ran := make(chan struct{})
	go func() { defer close(ran); p.run(runCtx) }()
	signs := func(head uint64) audit.LogCheckpoint {
		t.Helper()
		stored, err := p.onDemand(ctx)
		require.NoError(t, err)
		cp, err := audit.ParseLogCheckpoint(stored, []ed25519.PublicKey{pub})
		require.NoError(t, err)
		require.Equal(t, head, cp.Size)
		return cp
	}
	signs(record())

	ns.Shutdown()
	ns.WaitForShutdown()
	again <- struct{}{} // as the reconnect handler signals
	select {
	case <-ran:
		t.Fatal("the publisher stopped when the store could not make its consumer")
	case <-warned.Seen():
	case <-ctx.Done():
		t.Fatal("the publisher never asked for a consumer")
	}

	startJetStream(t, opts)
	second := signs(record()) // after its consistency proof from the first verified
	require.Equal(t, uint64(2), second.Size)
	stop()
	select {
	case <-ran:
	case <-ctx.Done():
		t.Fatal("the publisher never stopped")
	}
}

// startJetStream starts a JetStream server with opts, shut down when the test ends.
func startJetStream(t *testing.T, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(opts)
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}
