package projections_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// slowStream is a whole-stream history whose reads take a while and count how many run at once.
type slowStream struct {
	running, most atomic.Int32
	release       chan struct{}
}

func (s *slowStream) ReadAccount(context.Context, string) ([]ledger.Record, error) { return nil, nil }

func (s *slowStream) Read(ctx context.Context, _ uint64, _ func(ledger.Record) error) (uint64, error) {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return 0, nil
}

// A fleet query with as_of reads the whole stream and holds every account: one small request,
// up to MaxFleetAsOfEvents of work. Such folds run one at a time, so a client sending many at
// once (a dashboard over HTTP has no other bound) queues them instead of multiplying the
// ledger's memory and CPU by their number.
func TestFleetAsOfFoldsRunOneAtATime(t *testing.T) {
	t.Parallel()
	q, err := projections.NewQueries(projections.NewProjector(zerolog.Nop()), ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	stream := &slowStream{release: make(chan struct{})}
	q.UseHistory(stream)
	const clients = 8
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := q.Answer(context.Background(), projections.QueryTotals, projections.QueryRequest{AsOf: "2999-01-01T00:00:00Z"})
			assert.NoError(t, err)
		}()
	}
	require.Eventually(t, func() bool { return stream.running.Load() >= 1 }, 5*time.Second, time.Millisecond)
	assert.Never(t, func() bool { return stream.most.Load() > 1 }, 50*time.Millisecond, time.Millisecond, "one fold at a time")
	close(stream.release)
	wg.Wait()
	assert.Equal(t, int32(1), stream.most.Load())

	// A query that cannot get its turn within its context is refused as unavailable, not left
	// waiting.
	blocked := &slowStream{release: make(chan struct{})}
	q.UseHistory(blocked)
	go func() {
		_, _ = q.Answer(context.Background(), projections.QueryTotals, projections.QueryRequest{AsOf: "2999-01-01T00:00:00Z"})
	}()
	require.Eventually(t, func() bool { return blocked.running.Load() == 1 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = q.Answer(ctx, projections.QueryAccounts, projections.QueryRequest{AsOf: "2999-01-01T00:00:00Z"})
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	close(blocked.release)
}
