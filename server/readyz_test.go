package server_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestReadyProbesShareTheStoreRoundTrip: GET /readyz needs no token, so anyone who reaches the
// HTTP port may send it as often as they like. A burst of 100 probes makes a few stream info
// requests of the JetStream API, not one each: before, every probe made its own, and a flood
// of them could fill the server's queue of info requests, which it drops whole when full (the
// ledger's own requests with it). Every probe is still answered, ready.
func TestReadyProbesShareTheStoreRoundTrip(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	var infos atomic.Int64
	sub, err := l.NC.Subscribe("$JS.API.STREAM.INFO."+jetstore.StreamName, func(*nats.Msg) { infos.Add(1) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, l.NC.Flush())

	const burst = 100
	var wg sync.WaitGroup
	codes := make(chan int, burst)
	before := infos.Load()
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.HTTPURL()+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	require.NoError(t, l.NC.Flush()) // every copy of an API request the burst made has arrived
	for c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	made := infos.Load() - before
	assert.Less(t, made, int64(burst/4), "%d probes made %d stream info requests", burst, made)
	t.Logf("%d probes, %d stream info requests", burst, made)
}
