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

	"github.com/creditledger/creditledger/events"
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

// A fleet as_of answer over a stored history that breaks fails closed for the broken accounts
// only: an account with a message that cannot be decoded, and one with an event that does not
// follow its last version, are left out and named with the position where they break; the other
// accounts are answered, one whose bad message comes after its first event past as_of included.
func TestFleetAsOfLeavesOutOnlyTheBrokenAccounts(t *testing.T) {
	t.Parallel()
	f := newPagedFleet(t)
	for _, id := range []string{"a-1", "b-1", "c-1", "d-1"} {
		f.open(id, ledger.SourceSales)
	}
	raw := func(account string, data []byte) uint64 {
		pos := uint64(len(f.stream.recs) + 1)
		f.stream.recs = append(f.stream.recs, ledger.Record{AccountID: account, Position: pos, Data: data})
		return pos
	}
	badB := raw("b-1", []byte("{"))
	badD := raw("d-1", storedAt(t, "d-1", 7, f.at, events.PaygContractPurchased{ContractID: "d-1-Q", PurchasedAt: f.at}))
	f.add("b-1", events.LicenseActivated{LicenseID: "b-1-L", ActivatedAt: f.at}) // after the break: skipped
	at := f.at
	f.addAt("c-1", at.Add(time.Second), events.LicenseActivated{LicenseID: "c-1-L", ActivatedAt: at.Add(time.Second)})
	raw("c-1", []byte("{")) // after c-1's first event past as_of: not part of this answer

	req := projections.QueryRequest{AsOf: at.Format(time.RFC3339Nano)}
	out, err := f.q.Answer(context.Background(), projections.QueryTotals, req)
	require.NoError(t, err, "one broken account does not fail the fleet")
	totals := out.(projections.Totals)
	assert.Equal(t, 2, totals.Accounts)
	require.NotNil(t, totals.Past)
	assert.Equal(t, 2, totals.BrokenCount)
	require.Len(t, totals.BrokenAccounts, 2)
	assert.Equal(t, "b-1", totals.BrokenAccounts[0].AccountID)
	assert.Equal(t, badB, totals.BrokenAccounts[0].Position)
	assert.Contains(t, totals.BrokenAccounts[0].Reason, "cannot be decoded")
	assert.Equal(t, "d-1", totals.BrokenAccounts[1].AccountID)
	assert.Equal(t, badD, totals.BrokenAccounts[1].Position)
	assert.Contains(t, totals.BrokenAccounts[1].Reason, "does not follow")

	ids, _, err := f.page(projections.QueryAccounts, req)
	require.NoError(t, err)
	assert.Equal(t, []string{"a-1", "c-1"}, ids)

	live, err := f.q.Answer(context.Background(), projections.QueryTotals, projections.QueryRequest{})
	require.NoError(t, err)
	assert.Nil(t, live.(projections.Totals).Past, "a live answer has no as_of part")
}
