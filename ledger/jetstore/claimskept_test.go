package jetstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// The reservation bucket is marked while the stream is empty; a bucket without the mark beside a
// partitioned stream that holds messages was lost (ErrClaimsLost); a store with account subjects
// is not checked.
func TestClaimsKeptMark(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	appendOne := func(t *testing.T, st *jetstore.Store) {
		_, err := st.Append(ctx, []ledger.Record{{AccountID: "acme", Data: []byte(`{"version":1}`), Version: 1, CheckVersion: true}})
		require.NoError(t, err)
	}
	// marked opens a fresh store and its bucket, checks (marks) it while empty, and appends.
	marked := func(t *testing.T) (jetstream.JetStream, *jetstore.Store, *jetstore.Claims) {
		nc, js := bareJetStream(t)
		st, err := jetstore.Open(ctx, nc, jetstore.Config{})
		require.NoError(t, err)
		claims, err := jetstore.OpenClaims(ctx, js, 1)
		require.NoError(t, err)
		require.NoError(t, claims.CheckKept(ctx, st))
		appendOne(t, st)
		return js, st, claims
	}
	t.Run("marked while empty, kept after", func(t *testing.T) {
		js, st, claims := marked(t)
		require.NoError(t, claims.CheckKept(ctx, st), "marked before the first event")
		require.NoError(t, js.DeleteKeyValue(ctx, jetstore.ClaimsBucket))
		claims, err := jetstore.OpenClaims(ctx, js, 1)
		require.NoError(t, err)
		assert.ErrorIs(t, claims.CheckKept(ctx, st), jetstore.ErrClaimsLost, "recreated beside events")
		assert.ErrorIs(t, claims.CheckKept(ctx, st), jetstore.ErrClaimsLost, "and again: the refusal marks nothing")
	})
	t.Run("a deleted mark is no mark", func(t *testing.T) {
		js, st, claims := marked(t)
		kv, err := js.KeyValue(ctx, jetstore.ClaimsBucket)
		require.NoError(t, err)
		require.NoError(t, kv.Delete(ctx, "_ledger.kept"))
		assert.ErrorIs(t, claims.CheckKept(ctx, st), jetstore.ErrClaimsLost)
	})
	t.Run("a store with account subjects", func(t *testing.T) {
		nc, js := bareJetStream(t)
		_, err := js.CreateStream(ctx, olderBuildStreamConfig())
		require.NoError(t, err)
		st, err := jetstore.Open(ctx, nc, jetstore.Config{})
		require.NoError(t, err)
		appendOne(t, st)
		claims, err := jetstore.OpenClaims(ctx, js, 1)
		require.NoError(t, err)
		assert.NoError(t, claims.CheckKept(ctx, st), "its nodes learn ids from the stream too")
	})
}
