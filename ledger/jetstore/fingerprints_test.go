package jetstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

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
