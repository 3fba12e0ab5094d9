package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

// readAnswer is one flood read's outcome: its status (HTTP) or error code (NATS, "" for data).
type readAnswer struct {
	what   string
	status int
	code   string
	retry  string
	err    error
}

// TestAccountReadFloodLeavesNoConsumers: a dashboard sends many more per-account reads at once
// (as_of queries over NATS and HTTP, history, log) than the ledger reads at once, and fleet as_of
// queries among them. Every read is answered, with data or unavailable and a retry hint, none
// hangs, and the LEDGER stream's consumer count never grows past the bound during the flood nor
// past what it was after it (each read used to leave an ordered consumer on the server for five
// minutes).
func TestAccountReadFloodLeavesNoConsumers(t *testing.T) {
	t.Parallel()
	const bound, flood = 2, 120
	l := testledger.Start(t, func(c *server.Config) { c.MaxAccountReads = bound })
	waitServing(t, l)
	a := newAccount(t, l, "flood")
	seedQueryAccount(t, a)
	asOf := url.QueryEscape(l.Clock.Now().Format(time.RFC3339Nano))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	stream, err := js.Stream(ctx, "LEDGER")
	require.NoError(t, err)
	consumers := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			return -1
		}
		return info.State.Consumers
	}
	baseline := consumers()
	require.GreaterOrEqual(t, baseline, 0)

	most := make(chan int)
	done := make(chan struct{})
	go func() { // polls the server's consumer count until the flood is answered
		m := 0
		for {
			m = max(m, consumers())
			select {
			case <-done:
				most <- max(m, consumers())
				return
			default:
			}
		}
	}()
	answers := make(chan readAnswer, flood)
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 5 {
			case 0:
				answers <- natsAsOf(ctx, l, a.id, l.Clock.Now())
			case 4:
				answers <- floodGet(ctx, l.HTTPURL()+"/v1/totals?as_of="+asOf)
			case 1:
				answers <- floodGet(ctx, l.HTTPURL()+"/v1/accounts/"+a.id+"/balance?as_of="+asOf)
			case 2:
				answers <- floodGet(ctx, l.HTTPURL()+"/v1/accounts/"+a.id+"/history")
			case 3:
				answers <- floodGet(ctx, l.HTTPURL()+"/v1/accounts/"+a.id+"/log")
			}
		}()
	}
	wg.Wait()
	close(done)
	close(answers)
	peak := <-most
	served := 0
	for ans := range answers {
		if !assert.NoError(t, ans.err, "%s: every read is answered", ans.what) {
			continue
		}
		switch {
		case ans.status == http.StatusOK || (ans.status == 0 && ans.code == ""):
			served++
		case ans.code == "unavailable":
			assert.NotEmpty(t, ans.retry, "%s: a busy answer says when to retry", ans.what)
		default:
			t.Errorf("%s: answered %d %s", ans.what, ans.status, ans.code)
		}
	}
	t.Logf("%d of %d reads served, the rest busy; consumers before %d, at most %d", served, flood, baseline, peak)
	assert.Positive(t, served)
	assert.LessOrEqual(t, peak, baseline+bound, "consumers on LEDGER during the flood (before: %d)", baseline)
	assert.LessOrEqual(t, consumers(), baseline, "consumers on LEDGER after the flood")
}

// natsAsOf sends one balance query as of at over NATS.
func natsAsOf(ctx context.Context, l *testledger.Ledger, accountID string, at time.Time) readAnswer {
	body, _ := json.Marshal(map[string]string{"account_id": accountID, "as_of": at.Format(time.RFC3339Nano)})
	msg, err := l.NC.RequestWithContext(ctx, "ledger.query.balance", body)
	if err != nil {
		return readAnswer{what: "nats as_of", err: err}
	}
	ans := readAnswer{what: "nats as_of", code: msg.Header.Get(micro.ErrorCodeHeader)}
	if ans.code != "" {
		var rej api.Rejected
		if err := json.Unmarshal(msg.Data, &rej); err != nil {
			ans.err = fmt.Errorf("rejection %s: %w", msg.Data, err)
		}
		ans.retry = rej.Error.Data[api.RetryAfterData]
	}
	return ans
}

// floodGet gets u and reads its status, error code and Retry-After.
func floodGet(ctx context.Context, u string) readAnswer {
	ans := readAnswer{what: u}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		ans.err = err
		return ans
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ans.err = err
		return ans
	}
	defer resp.Body.Close()
	_, ans.err = io.Copy(io.Discard, resp.Body)
	ans.status, ans.code, ans.retry = resp.StatusCode, resp.Header.Get(api.HTTPErrorCodeHeader), resp.Header.Get("Retry-After")
	return ans
}
