package jetstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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
	last := st.(*jetstream.ObjectBucketStatus).StreamInfo().State.LastSeq
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
	// The survivor holds both snapshots (a save is acknowledged by two replicas of three).
	require.Eventually(t, func() bool { return streamLastOn(servers[survivor], "OBJ_"+jetstore.SnapshotBucket) == last },
		10*time.Second, 20*time.Millisecond)
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

	// A follower joins the bucket's direct gets only once nats-server's check (every 2 s) finds it
	// caught up, which can come after the others stopped (a load here then failed: "no
	// responders"); nats.go's read cannot answer meanwhile, so only a direct read passes.
	var got []byte
	require.Eventually(t, func() bool {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		got, err = near.Load(lctx, "partition-3")
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the survivor never read the snapshot: %v", err)
	assert.True(t, bytes.Equal(blob, got), "the whole snapshot, in order")
	got, err = near.Load(ctx, "empty")
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = near.Load(ctx, "never-saved")
	require.NoError(t, err)
	assert.Nil(t, got)
}

// TestSnapshotWithAWrongSizeDoesNotCrash: an object whose metadata claims a size far beyond what
// it holds (a bucket restored or edited wrongly) costs a fallback to nats.go's read, not the
// process: the direct read sets aside the claimed size before any chunk comes, so it takes only
// sizes a snapshot can have (bytes.Buffer.Grow panicked on these two).
func TestSnapshotWithAWrongSizeDoesNotCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, js, snaps := oneServerSnapshots(t)
	blob := make([]byte, 300_000) // three chunks
	_, err := rand.Read(blob)
	require.NoError(t, err)
	require.NoError(t, snaps.Save(ctx, "wrong-size", blob))

	obs, err := js.ObjectStore(ctx, jetstore.SnapshotBucket)
	require.NoError(t, err)
	info, err := obs.GetInfo(ctx, "wrong-size")
	require.NoError(t, err)
	for _, size := range []uint64{1 << 62, 1<<63 + 1} {
		info.Size = size
		meta, err := json.Marshal(info)
		require.NoError(t, err)
		msg := nats.NewMsg("$O." + jetstore.SnapshotBucket + ".M." + base64.URLEncoding.EncodeToString([]byte("wrong-size")))
		msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		msg.Data = meta
		_, err = js.PublishMsg(ctx, msg)
		require.NoError(t, err)

		var got []byte
		require.NotPanics(t, func() { got, err = snaps.Load(ctx, "wrong-size") }, "size %d", size)
		if err == nil { // nats.go's read, the fallback, checks the digest only
			assert.True(t, bytes.Equal(blob, got), "size %d", size)
		}
	}
}

// streamLastOn is the last sequence of the named stream on ns's own replica.
func streamLastOn(ns *natsserver.Server, name string) uint64 {
	jsz, err := ns.Jsz(&natsserver.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return 0
	}
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			if s.Name == name {
				return s.State.LastSeq
			}
		}
	}
	return 0
}

// TestSnapshotReadInBoundedBatches: a snapshot larger than one batch's byte bound (8 MiB) is read
// whole, in order, over several direct gets, not sent by the server in one burst of up to its
// max_pending (64 MiB) to the ledger's connection.
func TestSnapshotReadInBoundedBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, nc, _, snaps := oneServerSnapshots(t)
	blob := make([]byte, 20<<20)
	_, err := rand.Read(blob)
	require.NoError(t, err)
	require.NoError(t, snaps.Save(ctx, "whole", blob))
	calls := watchAPI(t, ns.ClientURL())
	got, err := snaps.Load(ctx, "whole")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(blob, got), "the whole snapshot, in order")
	gets := 0
	for subj, n := range calls.since(t, nc) {
		if strings.HasPrefix(subj, "$JS.API.DIRECT.GET.OBJ_") {
			gets += n
		}
		assert.False(t, strings.HasPrefix(subj, "$JS.API.CONSUMER."), "no consumer: %s", subj)
	}
	assert.GreaterOrEqual(t, gets, 3, "20 MiB in batches of at most 8 MiB")
}

// oneServerSnapshots is the snapshot bucket on one JetStream server, with a connection to it.
func oneServerSnapshots(t *testing.T) (*natsserver.Server, *nats.Conn, jetstream.JetStream, *jetstore.Snapshots) {
	t.Helper()
	ns, nc := jsServerConn(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	snaps, err := jetstore.OpenSnapshots(context.Background(), js, 1)
	require.NoError(t, err)
	return ns, nc, js, snaps
}
