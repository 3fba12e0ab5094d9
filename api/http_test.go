package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
)

func TestMuxAnswersErrorsWithJSONAndListsRoutes(t *testing.T) {
	t.Parallel()
	inner := api.NewMux()
	inner.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) })
	inner.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "teapot", http.StatusBadRequest) })
	outer := api.NewMux()
	outer.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	outer.Mount(inner)
	assert.Equal(t, []string{"GET /readyz", "GET /v1/things/{id}", "GET /plain"}, outer.Routes())

	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/v1/things/1", http.StatusOK, ""},
		{http.MethodGet, "/nowhere", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/v1/things/1", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodGet, "/plain", http.StatusBadRequest, "invalid_argument"},
	} {
		rec := httptest.NewRecorder()
		outer.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		assert.Equal(t, c.status, rec.Code, "%s %s", c.method, c.path)
		if c.code == "" {
			continue
		}
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		var body api.Rejected
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
		assert.False(t, body.OK)
		assert.Equal(t, c.code, string(body.Error.Code), rec.Body.String())
		assert.NotEmpty(t, body.Error.Message)
	}
}
