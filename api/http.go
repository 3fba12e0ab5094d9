package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/creditledger/creditledger/ledger"
)

// CodeMethodNotAllowed is the wire code of a request whose path exists with other methods only
// (HTTP 405; the Allow header lists them). It never comes from the ledger itself.
const CodeMethodNotAllowed ledger.Code = "method_not_allowed"

// Router is an http.Handler that can list the route patterns (http.ServeMux syntax) it serves.
type Router interface {
	http.Handler
	Routes() []string
}

// Mux is an http.ServeMux that remembers its route patterns (a test checks each is in the
// OpenAPI document) and answers every plain-text error, its own 404 and 405 included, with the
// JSON rejection body instead.
type Mux struct {
	mux    *http.ServeMux
	routes []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{mux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	m.routes = append(m.routes, pattern)
}

// HandleFunc registers f for pattern.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Mount serves every route of r here, so a method or path that r lacks is answered by this
// Mux's one 404 or 405 rather than by a catch-all.
func (m *Mux) Mount(r Router) {
	for _, p := range r.Routes() {
		m.Handle(p, r)
	}
}

// Routes lists the registered patterns in registration order.
func (m *Mux) Routes() []string { return slices.Clone(m.routes) }

// ServeHTTP routes the request; a plain-text error any handler writes becomes a JSON body.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mux.ServeHTTP(&jsonErrors{ResponseWriter: w, r: r}, r)
}

// WriteError writes err as the JSON rejection body with its HTTP status, and its code in
// HTTPErrorCodeHeader.
func WriteError(w http.ResponseWriter, err error) {
	le := AsError(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HTTPErrorCodeHeader, string(le.Code)) // the same code label as over NATS
	if s := le.Data[RetryAfterData]; s != "" && le.Code == ledger.CodeUnavailable {
		w.Header().Set("Retry-After", s)
	}
	w.WriteHeader(HTTPStatus(le.Code))
	_, _ = w.Write(RejectedBody(le))
}

// jsonErrors turns an error status written with a text/plain body (http.Error, http.NotFound,
// the ServeMux's own 404 and 405) into the JSON rejection body.
type jsonErrors struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (j *jsonErrors) WriteHeader(code int) {
	h := j.Header()
	if code < 400 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	e := &ledger.Error{Code: ledger.CodeInternal, Message: http.StatusText(code)}
	switch code {
	case http.StatusNotFound:
		e = ledger.Reject(ledger.CodeNotFound, "no route %s %s", j.r.Method, j.r.URL.Path)
	case http.StatusMethodNotAllowed:
		e = ledger.Reject(CodeMethodNotAllowed, "%s %s: allowed methods are %s", j.r.Method, j.r.URL.Path, h.Get("Allow"))
	case http.StatusBadRequest:
		e.Code = ledger.CodeInvalidArgument
	}
	body := RejectedBody(e)
	h.Set("Content-Type", "application/json")
	h.Set(HTTPErrorCodeHeader, string(e.Code))
	h.Del("Content-Length")
	j.ResponseWriter.WriteHeader(code)
	_, _ = j.ResponseWriter.Write(body)
	j.swallow = true
}

func (j *jsonErrors) Write(b []byte) (int, error) {
	if j.swallow {
		return len(b), nil // the plain-text body, replaced by the JSON one
	}
	return j.ResponseWriter.Write(b)
}

// Flush keeps streaming responses (the dashboard's event stream) working through the wrapper.
func (j *jsonErrors) Flush() {
	if f, ok := j.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (j *jsonErrors) Unwrap() http.ResponseWriter { return j.ResponseWriter }
