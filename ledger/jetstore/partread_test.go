package jetstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestReadPartitionsWithoutDirectGets: allow_direct may be turned off on the LEDGER stream
// (`nats stream edit LEDGER`; Open does not require it). A partition read apart uses direct
// gets, which nobody then serves: it must read the partition another way, as ReadAccountDirect
// and the fence heads do, not give up and fail every load of a node taking partitions over.
func TestReadPartitionsWithoutDirectGets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, js := bareJetStream(t)
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	s, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	st, err = jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	pos, err := st.Append(ctx, []ledger.Record{ev("acme", 1, false)})
	require.NoError(t, err)

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []uint64
	head, err := st.ReadPartitions(rctx, 1, st.Partitions(), []int{ledger.PartitionOf("acme", st.Partitions())}, func(r ledger.Record) error {
		got = append(got, r.Position)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, pos[0], head)
	assert.Equal(t, pos, got)
}
