package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/testledger"
)

// loadOpenAPI fetches /openapi.json from the ledger and checks it is a valid OpenAPI 3.1
// document.
func loadOpenAPI(t *testing.T, l *testledger.Ledger) *openapi3.T {
	t.Helper()
	status, body := pgGet(t, l, "/openapi.json")
	require.Equal(t, http.StatusOK, status)
	doc, err := openapi3.NewLoader().LoadFromData(body)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "version %s", doc.OpenAPI)
	require.NoError(t, doc.Validate(context.Background()), "the document is valid OpenAPI")
	return doc
}

// documentedPath turns a ServeMux pattern into its OpenAPI method and path: "GET /{$}" is "/",
// a subtree "GET /assets/" is "/assets/{file}".
func documentedPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	switch {
	case path == "/{$}":
		path = "/"
	case strings.HasSuffix(path, "/"):
		path += "{file}"
	}
	return method, path
}

// TestOpenAPICoversEveryRoute: every route the server registers is in the document with its
// method, and every documented operation is a route the server registers.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	doc := loadOpenAPI(t, l)
	routes := l.Routes()
	require.NotEmpty(t, routes)
	registered := map[string]bool{}
	for _, pattern := range routes {
		method, path := documentedPath(pattern)
		registered[method+" "+path] = true
		item := doc.Paths.Value(path)
		if !assert.NotNil(t, item, "route %s is not in /openapi.json", pattern) {
			continue
		}
		assert.NotNil(t, item.GetOperation(method), "route %s: no %s operation in /openapi.json", pattern, method)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			assert.True(t, registered[method+" "+path], "/openapi.json documents %s %s, which the server does not serve", method, path)
		}
	}
}

// TestOpenAPIResponsesValidate sends real requests, answers and errors alike, and validates
// each request and response against the document with kin-openapi (JSON Schema 2020-12 for a
// 3.1 document). Errors on paths or methods the document cannot describe (404, 405) are
// validated against its Rejected schema.
func TestOpenAPIResponsesValidate(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	pos, seeded := fleetSeed(t, l)
	doc := loadOpenAPI(t, l)
	doc.Servers = openapi3.Servers{{URL: l.HTTPURL()}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	_, err = l.NC.Request(audit.CheckpointRequestSubject, nil, pgWait) // for GET /v1/audit/proof
	require.NoError(t, err)
	asOf := url.QueryEscape(seeded.Format(time.RFC3339Nano))
	p := itoa(pos)
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v1/accounts/f-b?min_position=" + p, 200},
		{"/v1/accounts/f-c?as_of=" + asOf, 200},
		{"/v1/accounts/f-b/balance", 200},
		{"/v1/accounts/f-b/balance?as_of=" + asOf, 200},
		{"/v1/accounts/f-b/licenses", 200},
		{"/v1/accounts/f-b/switches", 200},
		{"/v1/accounts/f-b/usage?month=2026-01", 200},
		{"/v1/accounts/f-b/usage?as_of=" + asOf, 200},
		{"/v1/accounts/f-b/contracts", 200},
		{"/v1/accounts/f-b/history", 200},
		{"/v1/accounts/f-b/log", 200},
		{"/v1/accounts?limit=2", 200},
		{"/v1/accounts?status=grace&as_of=" + asOf, 200},
		{"/v1/totals", 200},
		{"/v1/totals?as_of=" + asOf, 200},
		{"/v1/payg/charges?month=2026-01", 200},
		{"/v1/payg/contracts?active=true", 200},
		{"/v1/audit/proof?position=" + p, 200},
		{"/v1/audit/proof?position=x", 400},
		{"/healthz", 200},
		{"/healthz/details", 200},
		{"/readyz", 200},
		{"/metrics", 200},
		{"/openapi.json", 200},
		{"/", 200},
		{"/assets/app.js", 200},
		{"/assets/style.css", 200},
		{"/assets/nothing.js", 404},
		{"/v1/accounts/nobody/balance", 404},
		{"/v1/accounts/f-b/usage?month=2026-13", 400},
		{"/v1/accounts?status=sleeping", 400},
		{"/v1/payg/charges", 400},
		{"/v1/accounts/f-b/balance?min_position=" + itoa(pos+1000), 503},
	} {
		t.Run(c.path, func(t *testing.T) {
			status, header, body := fetch(t, http.MethodGet, l.HTTPURL()+c.path)
			require.Equal(t, c.status, status, "%s", body)
			validate(t, router, l.HTTPURL()+c.path, status, header, body)
		})
	}
	// Routes the document cannot describe: an unknown path, a method a path does not have.
	rejected := doc.Components.Schemas["Rejected"].Value
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/v1/nothing", 404, "not_found"},
		{http.MethodGet, "/v1/accounts/f-b/nothing", 404, "not_found"},
		{http.MethodPost, "/v1/accounts/f-b/balance", 405, "method_not_allowed"},
		{http.MethodDelete, "/v1/totals", 405, "method_not_allowed"},
		{http.MethodPut, "/", 405, "method_not_allowed"},
	} {
		status, header, body := fetch(t, c.method, l.HTTPURL()+c.path)
		assert.Equal(t, c.status, status, "%s %s: %s", c.method, c.path, body)
		assert.Equal(t, "application/json", header.Get("Content-Type"), "%s %s", c.method, c.path)
		var v any
		require.NoError(t, json.Unmarshal(body, &v), "%s %s: %s", c.method, c.path, body)
		assert.NoError(t, rejected.VisitJSON(v, openapi3.EnableJSONSchema2020()), "%s %s: %s", c.method, c.path, body)
		assert.Contains(t, string(body), `"code":"`+c.code+`"`)
	}
}

func fetch(t *testing.T, method, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(pgCtx(t), method, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

// validate checks one request and its response against the document.
func validate(t *testing.T, router routers.Router, u string, status int, header http.Header, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	route, params, err := router.FindRoute(req)
	require.NoError(t, err, "the document has no route for %s", u)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if status < 400 {
		assert.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "request %s", u)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}}
	assert.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "response to %s: %s", u, body)
}
