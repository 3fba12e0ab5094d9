package projections_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api/openapi"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// Every answer of the read-model routes, errors included, is one the document describes: its
// status is listed for the route (kin-openapi lets an undocumented status through unless
// IncludeResponseStatus is set) and its body validates, as_of answers and a history that
// cannot be folded (500) included; every request the server accepts validates too.
func TestReadModelRoutesAnswerAsDocumented(t *testing.T) {
	t.Parallel()
	f := newPagedFleet(t)
	f.open("a-1", ledger.SourceAWS)
	f.add("a-1", events.LicenseActivated{LicenseID: "a-1-L", ActivatedAt: f.at})
	f.add("a-1", events.UsageRecorded{UsageID: "u1", Feature: "file_security", Quantity: decimal.RequireFromString("0.5"), Unit: "gb",
		OccurredAt: f.at, RecordedAt: f.at, ContractID: "a-1-P", RateKey: "file_security", Rate: decimal.RequireFromString("0.03"),
		RateSource: events.RateFromCard, RateCard: "2026-01", RateReason: "card", Amount: decimal.RequireFromString("0.015"), Currency: "USD"})
	f.open("b-1", ledger.SourceSales)
	asOf := url.QueryEscape(f.at.Format(time.RFC3339Nano))
	srv := httptest.NewServer(projections.Handler(f.q, nil))
	t.Cleanup(srv.Close)

	doc, err := openapi3.NewLoader().LoadFromData(openapi.Document)
	require.NoError(t, err)
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	check := func(path string, status int) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, status, resp.StatusCode, "%s: %s", path, body)
		route, params, err := router.FindRoute(req)
		require.NoError(t, err, path)
		opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if status < 400 {
			assert.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "request %s", path)
		}
		assert.NoError(t, openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts}),
			"response to %s: %s", path, body)
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v1/accounts/a-1", 200},
		{"/v1/accounts/a-1/balance?as_of=" + asOf, 200},
		{"/v1/accounts/a-1/licenses?as_of=" + asOf, 200},
		{"/v1/accounts/a-1/switches", 200},
		{"/v1/accounts/a-1/contracts?as_of=" + asOf, 200},
		{"/v1/accounts/a-1/usage?month=" + f.at.Format("2006-01"), 200},
		{"/v1/accounts/a-1/usage?as_of=" + asOf, 200},
		{"/v1/accounts?limit=1", 200},
		{"/v1/accounts?limit=1&as_of=" + asOf, 200},
		{"/v1/accounts?source=aws_marketplace&shortfall=false&billing_path=annual&status=active", 200},
		{"/v1/totals", 200},
		{"/v1/totals?as_of=" + asOf, 200},
		{"/v1/payg/charges?month=" + f.at.Format("2006-01"), 200},
		{"/v1/payg/charges?month=" + f.at.Format("2006-01") + "&as_of=" + asOf, 200},
		{"/v1/payg/contracts?active=false&limit=1", 200},
		{"/v1/payg/contracts?as_of=" + asOf, 200},
		{"/v1/accounts/nobody", 404},
		{"/v1/accounts/a-1/balance?as_of=2000-01-01T00:00:00Z", 404},
		{"/v1/accounts?cursor=nonsense", 400},
		{"/v1/accounts?limit=0", 400},
		{"/v1/payg/contracts?limit=0", 400},
		{"/v1/totals?limit=1", 400},
		{"/v1/accounts/a-1/balance?min_position=99", 503},
	} {
		check(c.path, c.status)
	}
	// A stored message that cannot be decoded: the account's own as_of answers over it are
	// internal errors; the fleet's leave the account out and name it (broken_accounts).
	f.stream.recs = append(f.stream.recs, ledger.Record{AccountID: "a-1", Position: uint64(len(f.stream.recs) + 1), Data: []byte("{")})
	check("/v1/accounts/a-1/balance?as_of="+asOf, 500)
	check("/v1/accounts/a-1?as_of="+asOf, 500)
	check("/v1/totals?as_of="+asOf, 200)
	check("/v1/accounts?as_of="+asOf, 200)
	check("/v1/payg/charges?month=2026-03&as_of="+asOf, 200)
	check("/v1/payg/contracts?as_of="+asOf, 200)
}
