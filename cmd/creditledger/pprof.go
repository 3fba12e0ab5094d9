package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
)

// profileServer serves Go's runtime profiles (net/http/pprof) of a running `serve` on its own
// listener, so that the memory of a node can be split between the writer, the projections and
// the embedded nats-server (docs/bench/memory.sh); it is off unless --pprof-listen names an address.
type profileServer struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// startProfileServer listens on addr and serves /debug/pprof/ there, without authentication.
func startProfileServer(addr string, log zerolog.Logger) (*profileServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p := &profileServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, addr: ln.Addr(), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("profile server stopped")
		}
	}()
	log.Warn().Str("addr", p.addr.String()).Msg("serving Go profiles without authentication (--pprof-listen); keep it on loopback")
	return p, nil
}

// Addr is the address the profiles are served on (the port chosen when addr ended in :0).
func (p *profileServer) Addr() string { return p.addr.String() }

// Close stops serving and waits for the serving goroutine to end.
func (p *profileServer) Close() {
	p.srv.Close()
	<-p.done
}
