package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
	"github.com/creditledger/creditledger/web"
)

// dashboard serves a Dashboard built directly over a test ledger's projector and stream, for
// tests that need options the server does not set.
func dashboard(t *testing.T, l *testledger.Ledger, opts ...web.Option) *httptest.Server {
	t.Helper()
	store, err := jetstore.Open(context.Background(), l.NC, jetstore.Config{})
	require.NoError(t, err)
	d, err := web.New(l.Projector(), jetstore.DirectReads{Store: store}, opts...)
	require.NoError(t, err)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return srv
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	proj := projections.NewProjector(zerolog.Nop())
	_, err := web.New(nil, jetstore.DirectReads{Store: &jetstore.Store{}})
	assert.Error(t, err)
	_, err = web.New(proj, nil)
	assert.Error(t, err)
	_, err = web.Handler(proj, jetstore.DirectReads{Store: &jetstore.Store{}}, nil)
	assert.Error(t, err)
	_, err = web.New(proj, jetstore.DirectReads{Store: &jetstore.Store{}}, web.WithHeartbeat(0))
	assert.Error(t, err)
	_, err = web.New(proj, jetstore.DirectReads{Store: &jetstore.Store{}}, web.WithMaxStreams(0))
	assert.Error(t, err)
	_, err = web.New(proj, jetstore.DirectReads{Store: &jetstore.Store{}}, web.WithMaxWait(-time.Second))
	assert.Error(t, err)
}

func TestPageAndAssets(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	base := l.HTTPURL()

	res, err := http.Get(base + "/")
	require.NoError(t, err)
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")
	for _, want := range []string{`<html lang="en">`, `<main id="main"`, `src="/assets/app.js"`, `href="/assets/style.css"`,
		`id="licenses-table"`, `id="as-of"`, `<label for="account">`} {
		assert.Contains(t, string(page), want)
	}

	for path, ctype := range map[string]string{
		"/assets/app.js":    "text/javascript",
		"/assets/style.css": "text/css",
	} {
		res, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), ctype), "%s: %s", path, res.Header.Get("Content-Type"))
		assert.NotEmpty(t, body, path)
	}

	for path, want := range map[string]int{
		"/assets/":            http.StatusNotFound, // no directory listing
		"/assets/missing.js":  http.StatusNotFound,
		"/index.html":         http.StatusNotFound, // the page lives at / only
		"/v1/accounts/a/nope": http.StatusNotFound,
	} {
		res, err := http.Get(base + path)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, want, res.StatusCode, path)
	}
	res, err = http.Post(base+"/", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	res.Body.Close()
	assert.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, res.StatusCode, "the page is only read")
}

// TestReadModelRoutesBesideTheDashboard: the JSON API the page reads still answers through the
// composed handler, with min_position, and unknown accounts are 404 not_found.
func TestReadModelRoutesBesideTheDashboard(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	s := newSender(t, l, "acme")
	s.buy("L1", "sales", "1000", 12, true)
	a := s.allocate("container_security", "250")
	base := l.HTTPURL() + "/v1/accounts/acme/"
	q := "?min_position=" + itoa(a.Position)

	var bal struct {
		Position    uint64            `json:"position"`
		Total       string            `json:"total_credits"`
		Allocated   string            `json:"allocated_credits"`
		Available   string            `json:"available_credits"`
		Shortfall   string            `json:"shortfall"`
		Allocations map[string]string `json:"allocations"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"balance"+q, &bal))
	assert.GreaterOrEqual(t, bal.Position, a.Position)
	assert.Equal(t, "1000", bal.Total)
	assert.Equal(t, "250", bal.Allocated)
	assert.Equal(t, "750", bal.Available)
	assert.Equal(t, "0", bal.Shortfall)
	assert.Equal(t, map[string]string{"container_security": "250"}, bal.Allocations)

	var lic struct {
		Licenses []struct {
			LicenseID string `json:"license_id"`
			Status    string `json:"status"`
			Credits   string `json:"credits"`
		} `json:"licenses"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"licenses"+q, &lic))
	require.Len(t, lic.Licenses, 1)
	assert.Equal(t, "L1", lic.Licenses[0].LicenseID)
	assert.Equal(t, "active", lic.Licenses[0].Status)
	assert.Equal(t, "1000", lic.Licenses[0].Credits)

	var sw struct {
		Features map[string]struct {
			BillingModel string `json:"billing_model"`
		} `json:"features"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"switches"+q, &sw))
	assert.Equal(t, "credits", sw.Features["container_security"].BillingModel)

	var health struct {
		OK bool `json:"ok"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, l.HTTPURL()+"/healthz", &health))
	assert.True(t, health.OK)

	status, code := errorCode(t, l.HTTPURL()+"/v1/accounts/nobody/balance")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", code)
}
