package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/metrics"
	"github.com/creditledger/creditledger/projections"
)

// HTTP request bounds. Every route is a GET, so bodies are bounded tightly; the query string
// carries at most a few short parameters.
const (
	MaxQueryBytes = 2048
	MaxBodyBytes  = 64 << 10
	// readyTimeout bounds the event-store round trip of GET /readyz.
	readyTimeout = 2 * time.Second
)

// Wire codes of HTTP authentication failures (they never come from the ledger itself).
const (
	CodeUnauthenticated  ledger.Code = "unauthenticated"
	CodePermissionDenied ledger.Code = "permission_denied"
)

// httpRoles says who may use a path: open (no token) or the roles whose token is accepted.
//
//	/healthz, /readyz, /, /assets/...      open (probes; the page itself holds no data)
//	/openapi.json                          open (the API's description holds no data)
//	/metrics                               metrics
//	/healthz/details                       metrics, auditor (parked messages: account ids)
//	/v1/audit/...                          auditor
//	/v1/... and anything else              dashboard, auditor
func httpRoles(path string) (open bool, roles []authz.Role) {
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/" || strings.HasPrefix(path, "/assets/") || path == "/openapi.json":
		return true, nil
	case path == "/metrics":
		return false, []authz.Role{authz.RoleMetrics}
	case path == "/healthz/details":
		return false, []authz.Role{authz.RoleMetrics, authz.RoleAuditor}
	case strings.HasPrefix(path, "/v1/audit/"):
		return false, []authz.Role{authz.RoleAuditor}
	default:
		return false, []authz.Role{authz.RoleDashboard, authz.RoleAuditor}
	}
}

// wrapHTTP puts the production edge around the API and dashboard handler: request bounds,
// bearer-token authorization (when an access config is given), GET /readyz, GET /metrics, and
// a metric per request. The answer lists every route it serves (api.Router).
func (s *Server) wrapHTTP(next api.Router) api.Router {
	m := s.observability()
	mux := api.NewMux()
	heads := newSharedHead(s.store.Head, time.Now) // the route is open: readyhead.go
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { s.serveReady(w, r, heads) })
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("GET /v1/audit/proof", newProofHandler(s.nc)) // auditproof.go
	mux.Mount(next)                                          // one mux: its 404 and 405 are JSON (api.Mux)
	if s.cfg.Auth != nil && len(s.cfg.Auth.HTTP.Tokens) == 0 {
		s.cfg.Log.Warn().Msg("the access config has no http tokens: every HTTP route but /healthz, /readyz and the page answers 401")
	}
	return routed{mux, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() { s.observeHTTP(m, r, rec, time.Since(start)) }()
		if len(r.URL.RawQuery) > MaxQueryBytes {
			writeHTTPError(rec, http.StatusRequestURITooLong, ledger.CodeInvalidArgument, "query string longer than "+strconv.Itoa(MaxQueryBytes)+" bytes")
			return
		}
		if r.ContentLength > MaxBodyBytes {
			writeHTTPError(rec, http.StatusRequestEntityTooLarge, ledger.CodeInvalidArgument, "request body larger than "+strconv.Itoa(MaxBodyBytes)+" bytes")
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, MaxBodyBytes)
		if !s.authorize(rec, r) {
			return
		}
		mux.ServeHTTP(rec, r)
	})}
}

// routed serves with its handler and lists the routes of its mux.
type routed struct {
	mux *api.Mux
	http.HandlerFunc
}

func (r routed) Routes() []string { return r.mux.Routes() }

// authorize answers 401 without a valid bearer token and 403 for a role the path does not
// admit; it reports whether the request may go on.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Auth == nil {
		return true
	}
	open, roles := httpRoles(r.URL.Path)
	if open {
		return true
	}
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="creditledger"`)
		writeHTTPError(w, http.StatusUnauthorized, CodeUnauthenticated, "this route needs an Authorization: Bearer token")
		return false
	}
	role, ok := s.cfg.Auth.TokenRole(token)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="creditledger", error="invalid_token"`)
		writeHTTPError(w, http.StatusUnauthorized, CodeUnauthenticated, "unknown bearer token")
		return false
	}
	if !slices.Contains(roles, role) {
		writeHTTPError(w, http.StatusForbidden, CodePermissionDenied, "role "+string(role)+" may not use "+r.URL.Path)
		return false
	}
	return true
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

func writeHTTPError(w http.ResponseWriter, status int, code ledger.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(api.RejectedBody(&ledger.Error{Code: code, Message: msg}))
}

// serveReady answers 200 when this node can serve: both NATS connections up, the writer
// running, and the event store answering (a cluster node without quorum is not ready); the
// store's head comes from head, shared by the probes of half a second.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request, heads *sharedHead) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	pos := s.proj.Position()
	body := map[string]any{"ok": true, "position": pos}
	var problems []string
	if !s.nc.IsConnected() || (s.svcNC != nil && !s.svcNC.IsConnected()) {
		problems = append(problems, "not connected to NATS")
	}
	select {
	case <-s.writer.Stopped():
		problems = append(problems, "writer stopped")
	default:
	}
	if head, err := heads.get(ctx); err != nil {
		problems = append(problems, "event store unreachable: "+err.Error())
	} else {
		body["head"] = head
		body["lag_events"] = head - min(head, pos)
	}
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusServiceUnavailable
		body["ok"], body["problems"] = false, problems
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// observability returns the process's metrics, creating them on first use.
func (s *Server) observability() *metrics.Metrics {
	if s.prod.metrics != nil {
		return s.prod.metrics
	}
	src := metrics.Sources{
		Writer: s.writer, Projector: s.proj, Stream: s.store,
		ReadModels:  append(append([]string(nil), projections.AccountQueries...), projections.FleetQueries...),
		ParkedCount: func() int { _, n := s.proj.ParkedMessages(); return n },
	}
	if s.audit != nil {
		src.AuditReads = func() metrics.AuditReads { return relayCounts(s.AuditReadStats()) }
		src.AuditInfos = func() metrics.AuditReads { return relayCounts(s.AuditInfoStats()) }
	}
	m, err := metrics.New(src)
	if err != nil {
		// Only a duplicate registration fails, and the registry is fresh: a programming error.
		panic(err)
	}
	s.prod.metrics = m
	return m
}

// fleetQueryOfRoute names the fleet query each fleet route answers (projections.FleetRoutes).
var fleetQueryOfRoute = func() map[string]string {
	m := map[string]string{}
	for name, route := range projections.FleetRoutes {
		m[route] = name
	}
	return m
}()

// observeHTTP counts the request by route pattern and status, and times account queries.
// The code label is the ledger's code, as over NATS (metrics.QueryCode).
func (s *Server) observeHTTP(m *metrics.Metrics, r *http.Request, rec *statusRecorder, d time.Duration) {
	route, status := r.Pattern, rec.status()
	if route == "" {
		route = "unmatched"
	}
	m.ObserveHTTP(route, status)
	const account = "GET /v1/accounts/{id}"
	const prefix = account + "/"
	query := strings.TrimPrefix(route, prefix)
	switch {
	case route == account:
		query = "account"
	case fleetQueryOfRoute[route] != "":
		query = fleetQueryOfRoute[route] // GET /v1/totals is the totals query, and so on
	case !strings.HasPrefix(route, prefix) || route == prefix+"events":
		return // not a query (the live event stream is long-lived by design)
	}
	code := metrics.QueryCode(status, rec.Header().Get(api.HTTPErrorCodeHeader))
	m.ObserveQuery(query, metrics.TransportHTTP, code, d)
}

// statusRecorder remembers the status a handler wrote; Unwrap keeps http.ResponseController
// (flushes of the live event stream, write deadlines) working through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// Flush sends what is buffered (the live event stream flushes after every event).
func (r *statusRecorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// commandOptions and queryOptions hook the metrics into the NATS services.
func (s *Server) commandOptions() []commands.Option {
	return []commands.Option{commands.WithObserver(s.observability())}
}

func (s *Server) queryOptions() []projections.RegisterOption {
	return []projections.RegisterOption{projections.WithQueryObserver(s.observability())}
}
