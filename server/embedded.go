package server

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/authz"
)

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// Listen is HOST:PORT of the client port; port 0 or -1 picks a free one.
	Listen string
	// DataDir holds the JetStream store (DataDir/jetstream).
	DataDir string
	// ServerName names the node (defaults to a name derived from the port); a cluster node
	// needs a stable one.
	ServerName string
	// Auth, when set, turns authorization on: only its users connect, each with its role's
	// permissions (security.go).
	Auth *authz.Config
	// Responder, with Auth, adds the ledger's responder user (authz.ResponderPermissions): the
	// identity that answers requests and can publish nothing but replies into the users' inboxes.
	Responder *authz.Responder
	// TLS secures the client port and the cluster routes (security.go).
	TLS TLSFiles
	// Cluster makes the server a node of a JetStream cluster (cluster.go).
	Cluster ClusterConfig
	// Log receives the server's warnings and errors (a full disk, a lost route, a stream that
	// cannot be written); its notices and traces are dropped. The zero logger drops everything.
	Log zerolog.Logger
}

// StartEmbedded starts a NATS server with JetStream on file storage that fsyncs every write
// (sync_interval: always), so an acknowledged append survives kill -9 and power loss.
func StartEmbedded(cfg EmbeddedConfig) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = -1
	}
	opts := &natsserver.Options{
		ServerName:    cfg.ServerName,
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:    true,
		NoSigs:        true,
		NoLog:         true,
		MaxPayload:    1 << 20,
		WriteDeadline: 10 * time.Second,
	}
	if err := applyAccess(opts, cfg); err != nil {
		return nil, err
	}
	if err := applyCluster(opts, cfg); err != nil {
		return nil, err
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	fatal := &fatalLog{log: cfg.Log.With().Str("component", "nats").Logger()}
	ns.SetLoggerV2(fatal, false, false, false)
	ns.Start()
	if err := waitReady(ns, fatal, embeddedReadyTimeout); err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats server on %s: %w", cfg.Listen, err)
	}
	return ns, nil
}

// embeddedReadyTimeout bounds the wait for the embedded server's listeners.
const embeddedReadyTimeout = 30 * time.Second

// waitReady waits for the server's listeners, and returns at once with the cause when the
// server reports a fatal error instead (a port already in use): the server does not exit on
// one, it only logs it, and without this the start waited out the whole timeout.
func waitReady(ns *natsserver.Server, fatal *fatalLog, timeout time.Duration) error {
	const step = 50 * time.Millisecond
	for waited := time.Duration(0); waited < timeout; waited += step {
		if msg := fatal.first(); msg != "" {
			return errors.New(msg)
		}
		if ns.ReadyForConnections(step) {
			return nil
		}
	}
	if msg := fatal.first(); msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("not ready after %s", timeout)
}

// fatalLog is the embedded server's logger: it keeps the first fatal error (the server's own
// loggers would exit the process on one), passes warnings and errors on to the process's log,
// and drops notices, debug and trace lines.
type fatalLog struct {
	mu  sync.Mutex
	msg string
	log zerolog.Logger
	// repeats folds a line the server repeats (a route to a dead peer is redialled every second,
	// on each of several route connections) into one line per repeatWindow with a count.
	repeats map[string]*repeated
	// now is the clock of repeatWindow (time.Now when nil).
	now func() time.Time
}

// repeatWindow is how long the same server log line (by format) is folded after it was logged.
const repeatWindow = 30 * time.Second

// repeated is one folded server log line: when it was last written and how often it came since.
type repeated struct {
	at         time.Time
	suppressed int
}

// pass says whether a line of this format is written now, and how many were folded before it.
func (l *fatalLog) pass(format string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	t := now()
	if l.repeats == nil {
		l.repeats = map[string]*repeated{}
	}
	r := l.repeats[format]
	if r != nil && t.Sub(r.at) < repeatWindow {
		r.suppressed++
		return false, 0
	}
	folded := 0
	if r != nil {
		folded = r.suppressed
	}
	if len(l.repeats) > 1024 { // bounded: formats are the server's own constants, but be safe
		l.repeats = map[string]*repeated{}
	}
	l.repeats[format] = &repeated{at: t}
	return true, folded
}

func (l *fatalLog) first() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

func (l *fatalLog) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msg == "" {
		l.msg = fmt.Sprintf(format, v...)
	}
}

func (l *fatalLog) Noticef(string, ...any) {}

func (l *fatalLog) Warnf(format string, v ...any) {
	if ok, folded := l.pass(format); ok {
		withRepeats(l.log.Warn(), folded).Msg(fmt.Sprintf(format, v...))
	}
}

func (l *fatalLog) Errorf(format string, v ...any) {
	if ok, folded := l.pass(format); ok {
		withRepeats(l.log.Error(), folded).Msg(fmt.Sprintf(format, v...))
	}
}

// withRepeats adds how many lines of the same format were folded since the last one written.
func withRepeats(e *zerolog.Event, folded int) *zerolog.Event {
	if folded > 0 {
		return e.Int("repeated", folded)
	}
	return e
}

func (l *fatalLog) Debugf(string, ...any) {}
func (l *fatalLog) Tracef(string, ...any) {}
