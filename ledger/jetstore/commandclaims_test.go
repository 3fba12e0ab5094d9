package jetstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/ledger/storetest"
)

// The LEDGER_COMMANDS bucket passes the command-id record's contract on one server (R1) and on
// a three-server cluster (R3, where a create of a held key fails with another code), through two
// connections, and holds its keys for CommandRetention, not for ever.
func TestCommandClaimsContract(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
		conns    func(t *testing.T) []*nats.Conn
	}{
		{"one server", 1, func(t *testing.T) []*nats.Conn {
			nc, _ := bareJetStream(t)
			return []*nats.Conn{nc, nc}
		}},
		{"three servers", 3, func(t *testing.T) []*nats.Conn {
			servers, _ := jsClusterOpts(t)
			conns := connectAll(t, servers)
			openElected(t, conns[0], jetstore.Config{Replicas: 3})
			return conns[:2]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			open := func(t *testing.T, nc *nats.Conn) *jetstore.CommandClaims {
				js, err := jetstream.New(nc)
				require.NoError(t, err)
				c, err := jetstore.OpenCommandClaims(ctx, js, tc.replicas)
				require.NoError(t, err)
				return c
			}
			conns := tc.conns(t) // one cluster for the whole contract: its cases claim distinct ids
			storetest.RunCommandClaims(t, func(t *testing.T) (storetest.CommandClaims, storetest.CommandClaims) {
				return open(t, conns[0]), open(t, conns[1])
			})

			require.NoError(t, open(t, conns[1]).ClaimBatch(ctx, []string{"batch-1", "batch-2"}, []string{"a", "b"}),
				"new command ids are one atomic batch, on %d replicas too", tc.replicas)
			js, err := jetstream.New(conns[0])
			require.NoError(t, err)
			kv, err := js.KeyValue(ctx, jetstore.CommandsBucket)
			require.NoError(t, err)
			st, err := kv.Status(ctx)
			require.NoError(t, err)
			assert.Equal(t, jetstore.CommandRetention, st.TTL(), "command ids are held for the retention, not for ever")
			info, err := js.Stream(ctx, "KV_"+jetstore.CommandsBucket)
			require.NoError(t, err)
			assert.True(t, info.CachedInfo().Config.AllowAtomicPublish, "a round's claims are one atomic batch")
		})
	}
}
