// Package testledger starts a real ledger process (embedded nats-server with JetStream on a
// temporary store, random ports, a manual clock) for integration tests.
package testledger

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/server"
)

// Epoch is where the manual clock of a test ledger starts.
var Epoch = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

// Ledger is a running test ledger with a client connection.
type Ledger struct {
	*server.Server
	Clock   *server.ManualClock
	DataDir string
	NC      *nats.Conn
	Client  *commands.Client
	cfg     server.Config
}

// Option adjusts the server config before start.
type Option func(*server.Config)

// Start runs a ledger in t.TempDir(); it is shut down when the test ends.
func Start(t testing.TB, opts ...Option) *Ledger {
	t.Helper()
	clock := server.NewManualClock(Epoch)
	cfg := server.Config{
		DataDir:       t.TempDir(),
		NATSListen:    "127.0.0.1:-1",
		HTTPListen:    "127.0.0.1:0",
		Clock:         clock,
		SweepInterval: time.Hour, // tests call Sweep after moving the clock
		Log:           logger(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	l := &Ledger{Clock: clock, DataDir: cfg.DataDir, cfg: cfg}
	l.start(t)
	t.Cleanup(l.Stop)
	return l
}

func logger() zerolog.Logger {
	if os.Getenv("LEDGER_TEST_LOG") != "" {
		return zerolog.New(os.Stderr).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

func (l *Ledger) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, l.cfg)
	require.NoError(t, err)
	l.Server = srv
	l.NC, err = nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	l.Client, err = commands.NewClient(l.NC, 10*time.Second)
	require.NoError(t, err)
}

// Stop shuts the ledger down (safe to call twice).
func (l *Ledger) Stop() {
	if l.NC != nil {
		l.NC.Close()
		l.NC = nil
	}
	if l.Server != nil {
		l.Server.Shutdown(context.Background())
		l.Server = nil
	}
}

// Restart stops the process and starts it again on the same data directory and NATS port.
func (l *Ledger) Restart(t testing.TB) {
	t.Helper()
	url := l.ClientURL()
	l.Stop()
	if l.cfg.NATSURL == "" {
		l.cfg.NATSListen = hostPort(url)
	}
	l.start(t)
}

func hostPort(url string) string {
	const p = "nats://"
	if len(url) > len(p) && url[:len(p)] == p {
		return url[len(p):]
	}
	return url
}

// HTTPURL is the base URL of the HTTP API.
func (l *Ledger) HTTPURL() string { return "http://" + l.HTTPAddr() }
