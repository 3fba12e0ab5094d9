package jetstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestSnapshotReadWithoutALeader: a snapshot of several chunks (the object store's are 128 KiB)
// is read back whole from a replica whose two peers are gone, so the bucket's stream has no
// leader and nats.go's read (an ordered consumer the leader must create) cannot answer; a
// missing one is nil, an empty one empty.
func TestSnapshotReadWithoutALeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers := jsCluster(t)
	conns := connectAll(t, servers)
	var snaps *jetstore.Snapshots
	require.Eventually(t, func() bool {
		js, err := jetstream.New(conns[0])
		require.NoError(t, err)
		snaps, err = jetstore.OpenSnapshots(ctx, js, 3)
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the bucket was never created")
	blob := make([]byte, 700_000) // six chunks
	_, err := rand.Read(blob)
	require.NoError(t, err)
	require.NoError(t, snaps.Save(ctx, "partition-3", blob))
	require.NoError(t, snaps.Save(ctx, "empty", []byte{}))

	js, err := jetstream.New(conns[0])
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctx, jetstore.SnapshotBucket)
	require.NoError(t, err)
	st, err := obs.Status(ctx)
	require.NoError(t, err)
	leader := st.(*jetstream.ObjectBucketStatus).StreamInfo().Cluster.Leader
	survivor := -1
	for i, ns := range servers {
		if ns.Name() != leader {
			survivor = i
			break
		}
	}
	jsS, err := jetstream.New(conns[survivor])
	require.NoError(t, err)
	near, err := jetstore.OpenSnapshots(ctx, jsS, 3)
	require.NoError(t, err)
	// A follower serves direct gets once nats-server's check (every 2 s) finds it caught up.
	require.Eventually(t, func() bool {
		got, err := near.Load(ctx, "partition-3")
		return err == nil && bytes.Equal(blob, got)
	}, 20*time.Second, 100*time.Millisecond)
	for i, ns := range servers {
		if i != survivor {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}
	obsS, err := jsS.ObjectStore(ctx, jetstore.SnapshotBucket)
	if err == nil { // (binding asks the leaderless stream for its info, which may fail by itself)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = obsS.GetBytes(rctx, "partition-3")
		cancel()
		require.Error(t, err, "nats.go's read answered without a leader")
	}

	got, err := near.Load(ctx, "partition-3")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(blob, got), "the whole snapshot, in order")
	got, err = near.Load(ctx, "empty")
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = near.Load(ctx, "never-saved")
	require.NoError(t, err)
	assert.Nil(t, got)
}
