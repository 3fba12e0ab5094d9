package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/projections"
)

// gatedHistory holds every read until the test lets it go, and says when one has started.
type gatedHistory struct {
	projections.AccountHistory
	started chan struct{}
	gate    chan struct{}
}

func (g gatedHistory) ReadAccount(ctx context.Context, accountID string) ([]ledger.Record, error) {
	g.started <- struct{}{}
	<-g.gate
	return g.AccountHistory.ReadAccount(ctx, accountID)
}

// wholeHistory reads all of an account from the store (from its first version).
type wholeHistory struct{ *memstore.Store }

func (w wholeHistory) ReadAccount(ctx context.Context, accountID string) ([]ledger.Record, error) {
	return w.Store.ReadAccount(ctx, accountID, 0)
}

// TestReadLimitAnswersBusyAtTheBound: with both turns taken, a third read waits the limit's wait
// and is answered unavailable with a retry hint, never reaching the store; a turn given back
// serves the next read; a cancelled caller is answered at once.
func TestReadLimitAnswersBusyAtTheBound(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	_, err := st.Append(context.Background(), []ledger.Record{{AccountID: "a", Data: []byte("{}"), Version: 1, CheckVersion: true}})
	require.NoError(t, err)
	g := gatedHistory{AccountHistory: wholeHistory{st}, started: make(chan struct{}, 4), gate: make(chan struct{})}
	l, err := projections.NewReadLimit(2, 50*time.Millisecond)
	require.NoError(t, err)
	ctx := context.Background()

	results := make(chan error, 2)
	for range 2 {
		go func() {
			recs, err := l.ReadAccount(ctx, g, "a")
			if err == nil && len(recs) != 1 {
				err = assert.AnError
			}
			results <- err
		}()
	}
	<-g.started
	<-g.started

	_, err = l.ReadAccount(ctx, g, "a")
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	assert.Equal(t, "1", api.AsError(err).Data[api.RetryAfterData])
	assert.Empty(t, g.started, "a read without a turn does not reach the store")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = l.ReadAccount(cancelled, g, "a")
	require.ErrorIs(t, err, ledger.ErrUnavailable)

	g.gate <- struct{}{}
	require.NoError(t, <-results) // its turn is given back before it answers
	go func() {
		_, err := l.ReadAccount(ctx, g, "a")
		results <- err
	}()
	<-g.started // the freed turn serves the next read
	g.gate <- struct{}{}
	g.gate <- struct{}{}
	require.NoError(t, <-results)
	require.NoError(t, <-results)

	_, err = projections.NewReadLimit(-1, 0)
	assert.Error(t, err)
}
