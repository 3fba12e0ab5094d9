package productiontest

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPBearerTokens: 401 without a token or with an unknown one, 403 outside the role,
// 200 inside it; probes and the page stay open; query strings and bodies are bounded.
func TestHTTPBearerTokens(t *testing.T) {
	t.Parallel()
	srv, _, admin := securedLedger(t)
	a, err := client(t, admin).PurchaseLicense(ctxT(t), purchase("h-1", "acct-http", "L-http", "30"))
	require.NoError(t, err)
	base := "http://" + srv.HTTPAddr()
	balance := base + "/v1/accounts/acct-http/balance?min_position=" + itoa(a.Position)

	cases := []struct {
		name, url, token string
		want             int
	}{
		{"healthz open", base + "/healthz", "", 200},
		{"readyz open", base + "/readyz", "", 200},
		{"page open", base + "/", "", 200},
		{"no token", balance, "", 401},
		{"unknown token", balance, "not-a-token-0123456789", 401},
		{"dashboard reads balance", balance, dashboardToken, 200},
		{"auditor reads balance", balance, auditorToken, 200},
		{"dashboard reads licenses", base + "/v1/accounts/acct-http/licenses", dashboardToken, 200},
		// Every route the dashboard page calls works with its token and refuses without one.
		{"page: switches", base + "/v1/accounts/acct-http/switches", dashboardToken, 200},
		{"page: history", base + "/v1/accounts/acct-http/history", dashboardToken, 200},
		{"page: history without token", base + "/v1/accounts/acct-http/history", "", 401},
		{"page: account", base + "/v1/accounts/acct-http", dashboardToken, 200},
		{"page: usage", base + "/v1/accounts/acct-http/usage", dashboardToken, 200},
		{"page: live events without token", base + "/v1/accounts/acct-http/events", "", 401},
		{"page: as_of balance", balance + "&as_of=2030-01-01T00:00:00Z", dashboardToken, 200},
		{"page: assets open", base + "/assets/app.js", "", 200},
		{"openapi open", base + "/openapi.json", "", 200},
		{"page: contracts", base + "/v1/accounts/acct-http/contracts", dashboardToken, 200},
		{"page: event log", base + "/v1/accounts/acct-http/log", dashboardToken, 200},
		{"page: overview totals", base + "/v1/totals", dashboardToken, 200},
		{"page: account list", base + "/v1/accounts?prefix=acct", auditorToken, 200},
		{"page: account list without token", base + "/v1/accounts", "", 401},
		{"page: payg charges", base + "/v1/payg/charges?month=2026-01", dashboardToken, 200},
		{"page: payg contracts", base + "/v1/payg/contracts", dashboardToken, 200},
		{"metrics token may not list accounts", base + "/v1/accounts", metricsToken, 403},
		{"metrics token may not read accounts", balance, metricsToken, 403},
		{"dashboard may not scrape metrics", base + "/metrics", dashboardToken, 403},
		{"metrics scrape", base + "/metrics", metricsToken, 200},
		{"no token for metrics", base + "/metrics", "", 401},
		{"audit routes are the auditor's", base + "/v1/audit/anything", dashboardToken, 403},
		{"auditor passes to audit routes", base + "/v1/audit/anything", auditorToken, 404},
		{"query string bounded", balance + "&pad=" + strings.Repeat("x", 4096), dashboardToken, 414},
	}
	for _, c := range cases {
		got, body := httpDo(t, c.url, c.token)
		assert.Equal(t, c.want, got, "%s: %s", c.name, body)
		switch c.want {
		case 401:
			assert.Contains(t, body, `"code":"unauthenticated"`, c.name)
		case 403:
			assert.Contains(t, body, `"code":"permission_denied"`, c.name)
		}
	}
	status, body := httpDo(t, balance, "", "Authorization", "Basic "+dashboardToken)
	assert.Equal(t, 401, status, "only bearer tokens: %s", body)

	// A body larger than the bound is refused before any handler reads it.
	status, _ = httpPost(t, balance, dashboardToken, strings.Repeat("x", 128<<10))
	assert.Equal(t, 413, status)
}

// TestLiveEventsWithToken: the dashboard's live stream opens with the dashboard's bearer token
// and sends the account's position first.
func TestLiveEventsWithToken(t *testing.T) {
	t.Parallel()
	srv, _, admin := securedLedger(t)
	_, err := client(t, admin).PurchaseLicense(ctxT(t), purchase("sse-1", "acct-sse", "L-sse", "5"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.HTTPAddr()+"/v1/accounts/acct-sse/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			return
		}
	}
	t.Fatalf("no event before the stream ended: %v", sc.Err())
}
