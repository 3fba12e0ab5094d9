package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

//go:embed assets
var assetsFS embed.FS

// Defaults of the dashboard's bounds.
const (
	// DefaultHeartbeat is how often an idle event stream sends a comment to keep proxies and
	// the client's connection from timing it out.
	DefaultHeartbeat = 15 * time.Second
	// DefaultMaxStreams bounds the event streams open at once; more are answered 503.
	DefaultMaxStreams = 1000
	// DefaultMaxWait bounds how long a history query waits for ?min_position=.
	DefaultMaxWait = projections.DefaultMaxWait
	// MaxHistoryPoints bounds the points of one history answer; older ones are left off.
	MaxHistoryPoints = 10000
	// historyReadTimeout bounds reading one account's events from the store.
	historyReadTimeout = 10 * time.Second
)

// EventReader reads all of one account's stored events in stream order. The server hands the
// dashboard jetstore.DirectReads, whose reads leave no consumer on the server.
type EventReader interface {
	ReadAccount(ctx context.Context, accountID string) ([]ledger.Record, error)
}

// Option adjusts a Dashboard.
type Option func(*Dashboard) error

// WithHeartbeat sets how often an idle event stream sends a keep-alive comment.
func WithHeartbeat(d time.Duration) Option {
	return func(db *Dashboard) error {
		if d <= 0 {
			return errors.New("web: heartbeat must be positive")
		}
		db.heartbeat = d
		return nil
	}
}

// WithMaxStreams bounds the event streams open at once.
func WithMaxStreams(n int) Option {
	return func(db *Dashboard) error {
		if n <= 0 {
			return errors.New("web: max streams must be positive")
		}
		db.streams = make(chan struct{}, n)
		return nil
	}
}

// WithStop ends every open event stream, and refuses new ones, once stop is closed. Close it
// before http.Server.Shutdown: a stream that began just as the server started shutting down
// registers its RegisterOnShutdown hook too late to be told, and would hold the shutdown until
// the dashboard left.
func WithStop(stop <-chan struct{}) Option {
	return func(db *Dashboard) error {
		db.stop = stop
		return nil
	}
}

// WithMaxWait bounds how long a history query waits for its min_position.
func WithMaxWait(d time.Duration) Option {
	return func(db *Dashboard) error {
		if d <= 0 {
			return errors.New("web: max wait must be positive")
		}
		db.maxWait = d
		return nil
	}
}

// WithReadLimit bounds the history and log reads of one account with l, shared with the queries'
// as_of reads (projections.Queries.LimitReads); by default the dashboard has a limit of its own
// (projections.DefaultAccountReads). A read that finds no turn in time is answered 503
// unavailable with Retry-After.
func WithReadLimit(l *projections.ReadLimit) Option {
	return func(db *Dashboard) error {
		if l == nil {
			return errors.New("web: nil read limit")
		}
		db.reads = l
		return nil
	}
}

// Dashboard serves the page, its assets, the live event stream and the history series.
type Dashboard struct {
	proj      *projections.Projector
	events    EventReader
	reads     *projections.ReadLimit
	heartbeat time.Duration
	maxWait   time.Duration
	streams   chan struct{}
	mux       *api.Mux

	mu      sync.Mutex
	closing map[*http.Server]chan struct{}
	// stop, when set, ends every stream (WithStop).
	stop <-chan struct{}
}

// New returns the dashboard over a projector (live updates) and an event reader (history).
func New(proj *projections.Projector, events EventReader, opts ...Option) (*Dashboard, error) {
	if proj == nil || events == nil {
		return nil, errors.New("web: nil projector or event reader")
	}
	reads, err := projections.NewReadLimit(0, 0)
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		proj: proj, events: events, reads: reads, heartbeat: DefaultHeartbeat, maxWait: DefaultMaxWait,
		streams: make(chan struct{}, DefaultMaxStreams), closing: map[*http.Server]chan struct{}{},
	}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	d.mux = api.NewMux()
	d.Register(d.mux)
	return d, nil
}

// Handler serves the dashboard and the JSON API together from one api.Mux. The API's routes
// (apiHandler, usually projections.Handler, lists them) are mounted beside the dashboard's, so
// one mux answers every route, and its 404 and 405, with the JSON error body.
func Handler(proj *projections.Projector, events EventReader, apiHandler api.Router, opts ...Option) (*api.Mux, error) {
	if apiHandler == nil {
		return nil, errors.New("web: nil api handler")
	}
	d, err := New(proj, events, opts...)
	if err != nil {
		return nil, err
	}
	mux := api.NewMux()
	mux.Mount(apiHandler)
	d.Register(mux)
	return mux, nil
}

// Mux is where Register adds routes (*api.Mux, or *http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request))
}

// Register adds the dashboard's routes to mux: GET / (the page), GET /assets/..., and
// GET /v1/accounts/{id}/events, /history and /log.
func (d *Dashboard) Register(mux Mux) {
	mux.HandleFunc("GET /{$}", d.servePage)
	static, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time; a test serves every asset
	}
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", withAssetHeaders(http.FileServerFS(static))))
	mux.HandleFunc("GET /v1/accounts/{id}/events", d.serveEvents)
	mux.HandleFunc("GET /v1/accounts/{id}/history", d.serveHistory)
	mux.HandleFunc("GET /v1/accounts/{id}/log", d.serveLog)
}

// ServeHTTP serves only the dashboard's own routes.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

// contentSecurityPolicy lets the page load its own script and style and talk to its own origin,
// nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (d *Dashboard) servePage(w http.ResponseWriter, r *http.Request) {
	page, err := assetsFS.ReadFile("assets/index.html")
	if err != nil {
		writeError(w, ledger.Reject(ledger.CodeInternal, "page missing from the build: %v", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(page)
}

func withAssetHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, err error) { api.WriteError(w, err) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
