package projections

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/api/openapi"
	"github.com/creditledger/creditledger/ledger"
)

// FleetRoutes maps each fleet query to its HTTP route.
var FleetRoutes = map[string]string{
	QueryAccounts:      "GET /v1/accounts",
	QueryTotals:        "GET /v1/totals",
	QueryPaygCharges:   "GET /v1/payg/charges",
	QueryPaygContracts: "GET /v1/payg/contracts",
}

// Handler serves the read models over HTTP: GET /v1/accounts/{id} (the account read model) and
// GET /v1/accounts/{id}/balance|licenses|switches|usage|contracts with ?min_position=P,
// ?as_of=RFC3339 and, for usage, ?month=YYYY-MM; the fleet read models at FleetRoutes, with
// their filters and paging as query parameters named as in QueryRequest; GET /healthz (counts
// only) and GET /healthz/details (the parked messages).
func Handler(q *Queries, healthy func() error) *api.Mux {
	mux := api.NewMux()
	for _, name := range AccountQueries {
		mux.HandleFunc(queryRoute(name), func(w http.ResponseWriter, r *http.Request) { // queryRoute: account.go
			req := QueryRequest{AccountID: r.PathValue("id"), AsOf: r.URL.Query().Get("as_of"), Month: r.URL.Query().Get("month")}
			if err := parsePosition(r, &req); err != nil {
				writeError(w, err)
				return
			}
			answer(w, r, q, name, req)
		})
	}
	for _, name := range FleetQueries {
		mux.HandleFunc(FleetRoutes[name], func(w http.ResponseWriter, r *http.Request) {
			req, err := fleetRequest(r)
			if err != nil {
				writeError(w, err)
				return
			}
			answer(w, r, q, name, req)
		})
	}
	mux.HandleFunc("GET /openapi.json", openapi.Serve)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if healthy != nil {
			if err := healthy(); err != nil {
				writeError(w, ledger.Reject(ledger.CodeUnavailable, "%v", err))
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
		if parked == nil {
			parked = []Parked{} // a list, never null
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "position": q.proj.Position(), "parked_count": n, "parked": parked})
	})
	return mux
}

func answer(w http.ResponseWriter, r *http.Request, q *Queries, name string, req QueryRequest) {
	out, err := q.Answer(r.Context(), name, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func parsePosition(r *http.Request, req *QueryRequest) error {
	if s := r.URL.Query().Get("min_position"); s != "" {
		p, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return ledger.Reject(ledger.CodeInvalidArgument, "min_position must be a non-negative integer")
		}
		req.MinPosition = p
	}
	return nil
}

// fleetRequest reads a fleet query from the query string; an unknown parameter is refused, so a
// misspelt filter does not silently list everything.
func fleetRequest(r *http.Request) (QueryRequest, error) {
	var req QueryRequest
	strs := map[string]*string{"as_of": &req.AsOf, "month": &req.Month, "cursor": &req.Cursor, "prefix": &req.Prefix,
		"status": &req.Status, "billing_path": &req.BillingPath, "source": &req.Source, "expiring_before": &req.ExpiringBefore}
	bools := map[string]**bool{"shortfall": &req.Shortfall, "active": &req.Active}
	for k, vs := range r.URL.Query() {
		v := vs[len(vs)-1]
		switch {
		case strs[k] != nil:
			*strs[k] = v
		case bools[k] != nil:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return req, ledger.Reject(ledger.CodeInvalidArgument, "%s must be true or false", k)
			}
			*bools[k] = &b
		case k == "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxPageLimit { // 0 would be the default page, not the limit asked for
				return req, ledger.Reject(ledger.CodeInvalidArgument, "limit must be an integer 1-%d", MaxPageLimit)
			}
			req.Limit = n
		case k == "min_position":
			if err := parsePosition(r, &req); err != nil {
				return req, err
			}
		default:
			return req, ledger.Reject(ledger.CodeInvalidArgument, "unknown query parameter %q", k)
		}
	}
	return req, nil
}

func writeError(w http.ResponseWriter, err error) {
	api.WriteError(w, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
