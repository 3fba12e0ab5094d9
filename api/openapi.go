package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 document of the HTTP API (every route, its parameters, answers and
// error shapes), served at GET /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// ServeOpenAPI answers GET /openapi.json.
func ServeOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(OpenAPI)
}
