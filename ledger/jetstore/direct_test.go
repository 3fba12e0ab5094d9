package jetstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/ledger/storetest"
)

// directCancelling is the contract store read through DirectReads (an account from a version
// is the suffix of its whole history that DirectReads reads).
type directCancelling struct{ *cancelling }

func (d directCancelling) ReadAccount(ctx context.Context, accountID string, from uint64) ([]ledger.Record, error) {
	recs, err := jetstore.DirectReads{Store: d.Store}.ReadAccount(ctx, accountID)
	for i, r := range recs {
		if r.Version >= from {
			return recs[i:], err
		}
	}
	return nil, err
}

func (d directCancelling) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	return jetstore.DirectReads{Store: d.Store}.Read(ctx, from, fn)
}

// TestDirectReadsStoreContract: the store read with direct gets is still a store.
func TestDirectReadsStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (ledger.Store, storetest.Uncertain) {
		nc, _ := bareJetStream(t)
		st, err := jetstore.Open(context.Background(), nc, jetstore.Config{})
		require.NoError(t, err)
		c := &cancelling{Store: st}
		return directCancelling{c}, func(stored bool) bool {
			if stored {
				return false
			}
			c.next.Store(true)
			return true
		}
	})
}

// TestReadAccountDirectLeavesNoConsumer: an account longer than one direct get batch, between
// another account's messages, reads back whole and in order; the whole stream reads back through
// DirectReads, to its head or stopped by the reader; and no read leaves a consumer on the server
// (the ordered consumers of ReadAccount and Read stay there for five minutes after each read).
func TestReadAccountDirectLeavesNoConsumer(t *testing.T) {
	t.Parallel()
	nc, js := bareJetStream(t)
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	var want []uint64
	for i := 0; i < 2500; i += 100 {
		batch := make([]ledger.Record, 0, 101)
		for j := i; j < i+100; j++ {
			batch = append(batch, ledger.Record{AccountID: "long", Data: []byte(fmt.Sprintf(`{"n":%d}`, j)), Version: uint64(j + 1)})
		}
		batch = append(batch, ledger.Record{AccountID: "other", Data: []byte(`{}`), Version: uint64(i/100 + 1)})
		pos, err := st.Append(ctx, batch)
		require.NoError(t, err)
		want = append(want, pos[:100]...)
	}
	for i := 0; i < 3; i++ {
		recs, err := st.ReadAccountDirect(ctx, "long")
		require.NoError(t, err)
		require.Len(t, recs, len(want))
		for j, r := range recs {
			assert.Equal(t, want[j], r.Position)
			assert.Equal(t, "long", r.AccountID)
			assert.Equal(t, fmt.Sprintf(`{"n":%d}`, j), string(r.Data))
		}
	}
	none, err := st.ReadAccountDirect(ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, none)

	// The whole stream, read to its head (a partition ownership record, which is not handed on)
	// and stopped early by its reader (as a fleet as_of fold stops past its bound).
	fence, err := js.Publish(ctx, jetstore.FenceSubject(0), []byte(`{}`))
	require.NoError(t, err)
	reads := jetstore.DirectReads{Store: st}
	n := 0
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	head, err := reads.Read(rctx, 1, func(r ledger.Record) error {
		n++
		assert.NotEqual(t, fence.Sequence, r.Position, "an ownership record is not an event")
		return nil
	})
	require.NoError(t, err, "the read reaches a head that is an ownership record")
	assert.Equal(t, fence.Sequence, head)
	assert.Equal(t, int(head)-1, n)
	stop := errors.New("past the bound")
	n = 0
	_, err = reads.Read(ctx, 1, func(ledger.Record) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	s, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.State.Consumers, "a direct read leaves no consumer on the server")
}
