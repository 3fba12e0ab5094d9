package productiontest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// TestQueryCodesAlikeOnBothTransports: an unknown account is code="not_found" over NATS and
// over HTTP (it was http_404 there), the account resource counts as the account query, and
// build_info and the parked-message gauge are exported.
func TestQueryCodesAlikeOnBothTransports(t *testing.T) {
	t.Parallel()
	srv := start(t, baseConfig(t))
	nc, _ := connect(t, srv.ClientURL())
	waitServing(t, nc)
	cl := client(t, nc)
	_, err := cl.Query(context.Background(), "balance", map[string]any{"account_id": "nobody"})
	require.True(t, errors.Is(err, ledger.ErrNotFound), "%v", err)
	base := "http://" + srv.HTTPAddr()
	status, _ := httpDo(t, base+"/v1/accounts/nobody/balance", "")
	require.Equal(t, 404, status)
	status, _ = httpDo(t, base+"/v1/accounts/nobody", "")
	require.Equal(t, 404, status)

	var text string
	defer func() {
		if t.Failed() {
			t.Log(text)
		}
	}()
	require.Eventually(t, func() bool {
		status, text = httpDo(t, base+"/metrics", "")
		return status == 200 && sample(text, `creditledger_queries_total{code="not_found",query="balance",transport="nats"}`) >= 1 // waitServing asks too
	}, waitFor, pollTick)
	for series, want := range map[string]float64{
		`creditledger_queries_total{code="not_found",query="balance",transport="http"}`: 1,
		`creditledger_queries_total{code="not_found",query="account",transport="http"}`: 1,
		`creditledger_projection_parked_messages`:                                       0,
	} {
		assert.Equal(t, want, sample(text, series), series)
	}
	assert.Contains(t, text, "creditledger_build_info{")
	assert.NotContains(t, text, `code="http_404"`)
}
