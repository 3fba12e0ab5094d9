package productiontest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// TestMetrics drives accepted, rejected and replayed commands and NATS and HTTP queries through
// a real ledger and reads them back from GET /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := start(t, baseConfig(t))
	nc, _ := connect(t, srv.ClientURL())
	waitServing(t, nc)
	cl := client(t, nc)
	ctx := ctxT(t)
	_, err := cl.PurchaseLicense(ctx, purchase("m-1", "acct-m", "L-m", "10"))
	require.NoError(t, err)
	_, err = cl.ActivateLicense(ctx, activate("m-2", "acct-m", "L-m"))
	require.NoError(t, err)
	_, err = cl.AllocateCredits(ctx, allocate("m-3", "acct-m", "999"))
	require.True(t, errors.Is(err, ledger.ErrInsufficientCredits), "%v", err)
	last, err := cl.ActivateLicense(ctx, activate("m-2", "acct-m", "L-m")) // replay
	require.NoError(t, err)
	_, err = cl.Query(context.Background(), "balance", map[string]any{"account_id": "acct-m", "min_position": last.Position})
	require.NoError(t, err)
	base := "http://" + srv.HTTPAddr()
	status, _ := httpDo(t, base+"/v1/accounts/acct-m/licenses", "")
	require.Equal(t, 200, status)
	status, _ = httpDo(t, base+"/v1/totals", "")
	require.Equal(t, 200, status)

	var text string
	defer func() {
		if t.Failed() {
			t.Log(text)
		}
	}()
	require.Eventually(t, func() bool {
		status, text = httpDo(t, base+"/metrics", "")
		return status == 200 && sample(text, `creditledger_projection_lag_events{read_model="balance"}`) == 0 &&
			sample(text, `creditledger_queries_total{code="ok",query="balance",transport="nats"}`) == 1
	}, waitFor, pollTick)
	for series, want := range map[string]float64{
		`creditledger_commands_total{code="ok",command="purchase_license"}`:                   1,
		`creditledger_commands_total{code="ok",command="activate_license"}`:                   2,
		`creditledger_commands_total{code="insufficient_credits",command="allocate_credits"}`: 1,
		`creditledger_command_duration_seconds_count{command="activate_license"}`:             2,
		`creditledger_events_appended_total`:                                                  2,
		`creditledger_idempotent_replays_total`:                                               1,
		`creditledger_conflicts_retried_total`:                                                0,
		`creditledger_projection_position{read_model="licenses"}`:                             float64(last.Position),
		`creditledger_projection_lag_seconds{read_model="switches"}`:                          0,
		`creditledger_stream_head_position`:                                                   float64(last.Position),
		`creditledger_query_duration_seconds_count{query="licenses",transport="http"}`:        1,
		`creditledger_queries_total{code="ok",query="balance",transport="nats"}`:              1,
		`creditledger_queries_total{code="ok",query="totals",transport="http"}`:               1,
		`creditledger_http_requests_total{code="200",route="GET /v1/accounts/{id}/licenses"}`: 1,
	} {
		assert.Equal(t, want, sample(text, series), series)
	}
	// Every read model, the fleet ones included, has its position and lag.
	for _, rm := range append(append([]string(nil), projections.AccountQueries...), projections.FleetQueries...) {
		assert.Equal(t, float64(last.Position), sample(text, `creditledger_projection_position{read_model="`+rm+`"}`), rm)
		assert.Equal(t, 0.0, sample(text, `creditledger_projection_lag_events{read_model="`+rm+`"}`), rm)
	}
}

// sample returns the value of one series in a Prometheus text exposition (-1 when absent).
func sample(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
