package jetstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// openRejectionsEventually opens the rejection log on nc as a cluster node's start does: retried
// while the cluster forms (any error, here), bounded.
func openRejectionsEventually(t *testing.T, nc *nats.Conn) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := jetstore.Open(ctx, nc, jetstore.Config{Replicas: 3})
		if err == nil {
			_, err = jetstore.OpenRejections(ctx, st, 3)
		}
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // a retry pause, as retryJS's; not synchronisation
	}
}

// An R3 rejection log keeps the creation time LEDGER records across a leader change and a restart
// of every server, and three nodes opening a new store at once all open it: the record is not a
// time that moves, nor one each node writes differently.
func TestRejectionLogRecordIsStableInACluster(t *testing.T) {
	t.Parallel()
	servers, opts := jsClusterOpts(t)
	conns := connectAll(t, servers)
	openElected(t, conns[0], jetstore.Config{Replicas: 3})

	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = openRejectionsEventually(t, nc)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "node %d", i)
	}
	js, err := jetstream.New(conns[1])
	require.NoError(t, err)
	ctx := context.Background()
	ledgerInfo, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	recorded := ledgerInfo.CachedInfo().Config.Metadata[jetstore.RejectionsCreatedMetadata]
	require.NotEmpty(t, recorded)

	// The log's leader steps down: another replica answers, with the same creation time.
	rej, err := js.Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	before := rej.CachedInfo().Cluster.Leader
	_, err = conns[0].Request("$JS.API.STREAM.LEADER.STEPDOWN."+jetstore.RejectionStream, nil, 5*time.Second)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := rej.Info(ctx)
		return err == nil && info.Cluster.Leader != "" && info.Cluster.Leader != before
	}, 20*time.Second, 100*time.Millisecond, "the log's leader never moved")
	require.NoError(t, openRejectionsEventually(t, conns[2]), "after the log's leader moved")

	// Every server restarts on its store.
	for _, ns := range servers {
		ns.Shutdown()
	}
	for _, ns := range servers {
		ns.WaitForShutdown()
	}
	restarted := startServers(t, opts)
	conns = connectAll(t, restarted)
	for i, nc := range conns {
		require.NoError(t, openRejectionsEventually(t, nc), "node %d after a restart of every server", i)
	}
}
