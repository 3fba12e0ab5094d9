package projections

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// Handler serves the read models over HTTP:
// GET /v1/accounts/{id}/balance|licenses|switches[?min_position=P][?as_of=RFC3339],
// GET /v1/accounts/{id}/usage[?month=YYYY-MM], GET /v1/accounts/{id} (the account read model)
// GET /healthz (counts only) and GET /healthz/details (the parked messages).
func Handler(q *Queries, healthy func() error) http.Handler {
	mux := http.NewServeMux()
	for _, name := range []string{QueryBalance, QueryLicenses, QuerySwitches, QueryUsage, QueryAccount} {
		name := name
		mux.HandleFunc(queryRoute(name), func(w http.ResponseWriter, r *http.Request) { // queryRoute: account.go (issue 5)
			req := QueryRequest{AccountID: r.PathValue("id"), AsOf: r.URL.Query().Get("as_of"), Month: r.URL.Query().Get("month")}
			if s := r.URL.Query().Get("min_position"); s != "" {
				p, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					writeError(w, ledger.Reject(ledger.CodeInvalidArgument, "min_position must be a non-negative integer"))
					return
				}
				req.MinPosition = p
			}
			out, err := q.Answer(r.Context(), name, req)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if healthy != nil {
			if err := healthy(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ok": false, "error": err.Error()})
				return
			}
		}
		// Open route: up or not and counts only. Which messages were parked (account ids, reasons)
		// is at /healthz/details, which the server puts behind the metrics or auditor token.
		_, n := q.proj.ParkedMessages()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "position": q.proj.Position(), "parked_count": n})
	})
	mux.HandleFunc("GET /healthz/details", func(w http.ResponseWriter, r *http.Request) {
		parked, n := q.proj.ParkedMessages()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "position": q.proj.Position(), "parked_count": n, "parked": parked})
	})
	return mux
}

func writeError(w http.ResponseWriter, err error) {
	le := api.AsError(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(api.HTTPErrorCodeHeader, string(le.Code)) // the same code label as over NATS
	w.WriteHeader(api.HTTPStatus(le.Code))
	_, _ = w.Write(api.RejectedBody(le))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
