package jetstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestFingerprintIsTheSubjectAndData: a position's fingerprint is SHA-256 over the length of its
// subject (uvarint), its subject and its data (docs/OPERATIONS.md), for an event and an ownership
// record alike, with direct gets and without them (read from the leader), near or not.
func TestFingerprintIsTheSubjectAndData(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js := bareJetStream(t)
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{ev("acme", 1, true)})
	require.NoError(t, err)
	_, err = st.Fence(ctx, []ledger.FenceClaim{{Fence: ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 1, Owner: "n1",
		Partition: 3, Partitions: st.Partitions(), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}})
	require.NoError(t, err)
	stream, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	var want [][]byte
	for _, pos := range []uint64{1, 2} {
		m, err := stream.GetMsg(ctx, pos)
		require.NoError(t, err)
		h := sha256.New()
		h.Write(binary.AppendUvarint(nil, uint64(len(m.Subject))))
		h.Write([]byte(m.Subject))
		h.Write(m.Data)
		want = append(want, h.Sum(nil))
	}
	check := func(st *jetstore.Store, how string) {
		got, err := st.Fingerprints(ctx, []uint64{1, 2, 3})
		require.NoError(t, err, how)
		assert.Equal(t, append(want, nil), got, how)
		near, err := st.FingerprintsNear(ctx, []uint64{1, 2, 3})
		require.NoError(t, err, how)
		assert.Equal(t, append(want, nil), near, how)
	}
	check(st, "direct gets")

	cfg := stream.CachedInfo().Config
	cfg.AllowDirect = false
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	leaderOnly, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	check(leaderOnly, "from the leader")
}

// TestFingerprintsOfAPositionALaggingReplicaLacks: through the server of a replica that the
// network cuts off from the stream's leader (the two others go on appending), no direct get
// returns a position appended since. Fingerprints must not take that for "no message there" (a
// load would pass a good snapshot over): it asks the leader, and fails when the leader cannot be
// reached. FingerprintsNear gives nil for it (a lag: the writer's ErrBehind), never an error.
func TestFingerprintsOfAPositionALaggingReplicaLacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers, proxies := proxiedCluster(t)
	conns := connectAll(t, servers)
	st := openElected(t, conns[0], jetstore.Config{Replicas: 3, Partitions: 4})
	info, err := jetstore.LeaderInfo(ctx, mustStream(t, st))
	require.NoError(t, err)
	leader := -1
	for i, ns := range servers {
		if ns.Name() == info.Cluster.Leader {
			leader = i
		}
	}
	require.GreaterOrEqual(t, leader, 0)
	lag, other := (leader+1)%3, (leader+2)%3
	writer, err := jetstore.Open(ctx, conns[other], jetstore.Config{})
	require.NoError(t, err)
	replica, err := jetstore.Open(ctx, conns[lag], jetstore.Config{})
	require.NoError(t, err)
	held, err := writer.Append(ctx, []ledger.Record{ev("acme", 1, false)})
	require.NoError(t, err)
	want, err := writer.Fingerprints(ctx, held)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := replica.FingerprintsNear(ctx, held)
		return err == nil && bytes.Equal(got[0], want[0])
	}, 10*time.Second, 10*time.Millisecond, "the replica holds the first append")

	proxies[leader][lag].Cut()
	proxies[lag][leader].Cut()
	var lacked []uint64
	for deadline := time.Now().Add(30 * time.Second); ; {
		// The cut replica may call an election: an append may find no responders for a moment.
		lacked, err = writer.Append(ctx, []ledger.Record{ev("acme", 2, false)})
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // a retry interval, not a synchronisation
	}
	require.NoError(t, err)

	near, err := replica.FingerprintsNear(ctx, []uint64{held[0], lacked[0]})
	require.NoError(t, err, "near: what nobody answers for is nil, not an error")
	require.Len(t, near, 2)
	if near[0] != nil { // (nats-server 2.15 stops serving direct gets from a replica that fell behind)
		assert.Equal(t, want[0], near[0], "held: the message's")
	}
	assert.Nil(t, near[1], "lacked: nil, a lag")
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := replica.Fingerprints(rctx, lacked)
	assert.Error(t, err, "the leader cannot be reached: no answer, rather than nil (%v)", got)
}
