// Package openapi holds the OpenAPI 3.1 document of the HTTP API and serves it; apart from api,
// so that clients importing api do not carry the document.
package openapi

import (
	_ "embed"
	"net/http"
)

// Document is the OpenAPI 3.1 document of the HTTP API (every route, its parameters, answers and
// error shapes), served at GET /openapi.json.
//
//go:embed openapi.json
var Document []byte

// Serve answers GET /openapi.json.
func Serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(Document)
}
