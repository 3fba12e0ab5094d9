package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/commands"
	commandservice "github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/internal/buildinfo"
	"github.com/creditledger/creditledger/internal/microsvc"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/projections"
	"github.com/creditledger/creditledger/web"
	"github.com/creditledger/creditledger/writer"
)

// Config configures one ledger process.
type Config struct {
	// DataDir holds the embedded server's JetStream store.
	DataDir string
	// NATSListen is the embedded server's client address (ignored with NATSURL).
	NATSListen string
	// NATSURL connects to an existing NATS/JetStream deployment instead of embedding one.
	NATSURL string
	// HTTPListen is the HTTP API's address; empty disables HTTP.
	HTTPListen string
	// Clock defaults to the system clock.
	Clock writer.Clock
	// SweepInterval is how often the expiry processor looks for due renewals and expiries.
	SweepInterval time.Duration
	// Replicas of the LEDGER stream when it is created.
	Replicas int
	// Partitions: how this node shares the accounts with other nodes (partitions.go).
	Partitions PartitionConfig
	// Hooks are for tests (hooks.go); nil in production.
	Hooks *Hooks
	// MaxInflight is how many group-commit appends may be in flight (0: the writer's default).
	MaxInflight int
	// Linger bounds the group-commit wait for the commands an append's replies set off (0: the
	// writer's default; negative: never wait).
	Linger time.Duration
	// SnapshotEvery is how many events trigger a state snapshot (0: the writer's default).
	SnapshotEvery uint64
	// QueryMaxWait bounds a min_position wait.
	QueryMaxWait time.Duration
	// MaxAccountReads bounds the reads of one account's history that clients set off (as_of
	// queries, the dashboard's history and log) running at once; more wait a little, then are
	// answered unavailable (0: projections.DefaultAccountReads).
	MaxAccountReads int
	// AuditReads bounds the auditors' direct gets and stream infos this node serves
	// (auditreads.go).
	AuditReads AuditReadConfig
	// MaxForwards bounds the commands this node passes to their partitions' owners at once;
	// more are answered unavailable at once (0: commandservice.DefaultForwardLimit).
	MaxForwards int
	Log         zerolog.Logger
	// Checkpoints configures the signed checkpoint publisher (server/checkpoints.go).
	Checkpoints CheckpointConfig
	// ProductionConfig: access control, TLS, cluster (issue 6).
	ProductionConfig
	// Payg configures usage metering: lateness window, clock skew, rate card (server/payg.go).
	Payg PaygConfig
}

// ProductionConfig is the production footing of a process (issue 6): access control, TLS,
// cluster membership; see security.go, cluster.go, httpauth.go.
type ProductionConfig struct {
	// Auth turns on NATS authorization and HTTP bearer tokens; nil runs open.
	Auth *authz.Config
	// TLS secures the embedded server's client port and routes (with NATSURL: see NATSConn).
	TLS TLSFiles
	// Cluster makes the embedded server a JetStream cluster node; ServerName names the node.
	Cluster    ClusterConfig
	ServerName string
	// NATSConn holds credentials and TLS for the connections to NATSURL.
	NATSConn natsconn.Options
	// ResponderConn, with NATSURL, is the identity of the connection that answers requests (its
	// TLS settings come from NATSConn): give it a user that may publish only into the users'
	// inboxes. Nil: the ledger identity answers too (docs/SECURITY.md). The embedded server
	// makes its own responder and ignores this.
	ResponderConn *natsconn.Options
}

// Server is a running ledger process.
type Server struct {
	cfg      Config
	ns       *natsserver.Server
	nc       *nats.Conn
	store    *jetstore.Store
	writer   *node
	proj     *projections.Projector
	svc      *microsvc.Service
	guarded  microsvc.Group // svc behind the reply guard (responder.go): endpoints are added here
	cmds     *commandservice.Service
	http     *http.Server
	httpStop chan struct{}
	httpAddr string
	// svcNC carries the micro service (requests in, replies out); nc carries appends and the
	// projector's consumer, so neither waits behind the other's writes.
	svcNC    *nats.Conn
	url      string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	prod     production // issue 6: metrics, id claims (security.go)
	// audit serves the auditors' direct gets and stream infos, bounded, on auditNC
	// (auditreads.go); nil without.
	audit   *auditReads
	auditNC *nats.Conn
	dirLock *dirLock // one process per data directory (datadir.go)
	// reconnected tells the stream's followers that nc reconnected (reconnects.go).
	reconnected *reconnects
}

// Start brings every part up and returns once the projections have caught up with the stream.
// The result is unnamed so that `return nil, err` cannot nil the s that the goroutines started
// here (projector, writer, HTTP) still read: that was a nil-pointer panic on a failed start.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	s := &Server{cfg: cfg}
	s.cfg.Replicas = s.resolveReplicas() // 3 in a cluster of 3+ nodes (cluster.go)
	cfg = s.cfg
	defer func() {
		if err != nil {
			s.Shutdown(context.Background())
		}
	}()
	t0 := time.Now()
	url := cfg.NATSURL
	if url == "" && cfg.DataDir != "" {
		// Before anything in the directory is opened: a second process on it fails here.
		if s.dirLock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if url == "" {
		if s.ns, err = s.startEmbedded(ctx); err != nil { // auth, TLS, cluster: security.go
			return nil, err
		}
		url = s.ns.ClientURL()
	}
	s.url = url
	tNATS := time.Since(t0)
	if s.nc, err = s.dial("creditledger-store", false); err != nil {
		return nil, err
	}
	// The projector and the checkpoint publisher follow the stream again at once after the store
	// connection reconnects (projections.Projector.Run, checkpointPublisher.follow).
	s.reconnected = newReconnects()
	s.nc.SetReconnectHandler(func(*nats.Conn) { s.reconnected.signal() })
	if s.svcNC, err = s.dial("creditledger-service", true); err != nil { // the responder: responder.go
		return nil, err
	}
	if err := s.startAuditReads(); err != nil { // the auditors' direct gets, bounded: auditreads.go
		return nil, err
	}
	if s.store, err = s.openStore(ctx); err != nil { // retries while a cluster forms: cluster.go
		return nil, err
	}
	snaps, err := s.openSnapshots(ctx) // retries while a cluster forms: cluster.go
	if err != nil {
		return nil, err
	}
	if err := s.openShared(ctx); err != nil { // id claims when nodes share the stream: cluster.go
		return nil, err
	}
	rules := ledger.NewRules(ledger.DefaultCatalogue())
	cfg.Payg.apply(&rules) // hook: server/payg.go (issue 5)
	var rejLog *jetstore.RejectionLog
	// Retried while a cluster forms, like the other streams (retryJS, cluster.go); a log that
	// stays lost past lostLogGrace ends the start (lostLog).
	lost := lostLog{grace: lostLogGrace, now: time.Now}
	if err := s.retryJS(ctx, "the rejection stream", func(ctx context.Context) (err error) {
		if rejLog, err = jetstore.OpenRejections(ctx, s.store, cfg.Replicas); err != nil {
			return lost.check(err)
		}
		return rejLog.Visible(ctx) // the writer reads it next
	}); err != nil {
		return nil, err
	}
	if s.writer, err = s.newNode(ctx, rejLog, rules, snaps); err != nil { // partitions.go, cluster.go
		return nil, err
	}
	// The projector resumes from its own checkpoint (read models and position saved together),
	// independently of the writer's fold; without one it replays the stream from the start. The
	// two restores share nothing, so they run side by side.
	projLog := cfg.Log.With().Str("component", "projector").Logger()
	s.proj = projections.NewProjector(projLog, projections.WithBrokenHook(s.writer.MarkBroken))
	type restored struct {
		pos uint64
		err error
	}
	projDone := make(chan restored, 1)
	go func() {
		pos, err := s.proj.Restore(ctx, s.projectionSnapshots(snaps))
		projDone <- restored{pos, err}
	}()
	tLoad := time.Now()
	// Restoring builds millions of small objects that all stay live; collecting while they are
	// built only burns CPU the restore needs, so the collector is relaxed until both are done.
	gcPercent := debug.SetGCPercent(400)
	// This node's first share of the partitions; retried while a cluster forms (a stream another
	// node created a moment ago can be unknown here for a moment). An attempt is not cut at
	// clusterOpenTimeout: a load takes as long as the store needs (firstLoadAttempt).
	loadErr := s.firstPartitions(ctx, s.writer.load)
	writerLoad := time.Since(tLoad)
	pr := <-projDone
	debug.SetGCPercent(gcPercent)
	cfg.Log.Info().Dur("nats_ready", tNATS).Dur("writer_load", writerLoad).Dur("state_restored", time.Since(tLoad)).
		Uint64("position", s.writer.Head()).Uint64("projections_checkpoint", pr.pos).Msg("state loaded")
	if loadErr != nil {
		return nil, loadErr
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if pos, err := pr.pos, pr.err; err != nil || pos > s.writer.Head() {
		projLog.Warn().Err(err).Uint64("checkpoint", pos).Uint64("stream_head", s.writer.Head()).
			Msg("projections checkpoint unusable; rebuilding from the stream")
		s.proj = projections.NewProjector(projLog, projections.WithBrokenHook(s.writer.MarkBroken))
	}
	s.proj.UseSnapshots(s.projectionSnapshots(snaps), cfg.SnapshotEvery)
	stream, err := s.store.JetStream().Stream(ctx, jetstore.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream handle: %w", err)
	}
	s.goRun(func() {
		if err := s.proj.Run(runCtx, stream, s.reconnected.projector); err != nil {
			cfg.Log.Error().Err(err).Msg("projector stopped")
		}
	})
	if err := s.proj.WaitFor(ctx, s.writer.Head()); err != nil {
		return nil, fmt.Errorf("projections catching up to %d: %w", s.writer.Head(), err)
	}
	// The command service exists before the node runs: the node serves the internal subjects of
	// the partitions it owns with it (partitions.go); its public endpoints come with the others.
	if s.cmds, err = commandservice.New(s.writer, cfg.Log.With().Str("component", "commands").Logger(), s.commandOptions()...); err != nil {
		return nil, err
	}
	var route []commandservice.RouteOption
	if cfg.MaxForwards > 0 {
		route = append(route, commandservice.WithForwardLimit(cfg.MaxForwards))
	}
	if err := s.cmds.Route(s.writer, s.svcNC, commandservice.DefaultForwardWait, route...); err != nil {
		return nil, err
	}
	s.goRun(func() { s.writer.run(runCtx) })
	queries, err := projections.NewQueries(s.proj, rules.Catalogue, cfg.QueryMaxWait)
	if err != nil {
		return nil, err
	}
	// as_of queries fold the account's stored events, read with direct gets (no consumer left on
	// the server per query), a bounded number at once, shared with the dashboard.
	reads, err := projections.NewReadLimit(cfg.MaxAccountReads, 0)
	if err != nil {
		return nil, err
	}
	queries.UseHistory(jetstore.DirectReads{Store: s.store})
	queries.LimitReads(reads)
	if err := s.startServices(runCtx, queries, reads); err != nil {
		return nil, err
	}
	if s.cfg.Checkpoints.Signer == nil {
		s.cfg.Checkpoints.Signer = s.writer.signsCheckpoints // one signer in a cluster: partitions.go
	}
	if err := s.startCheckpoints(runCtx); err != nil {
		return nil, err
	}
	// Make sure the NATS server has every endpoint subscription before callers are told we are up.
	if err := s.svcNC.Flush(); err != nil {
		return nil, fmt.Errorf("flush service subscriptions: %w", err)
	}
	return s, nil
}

func (s *Server) startServices(runCtx context.Context, queries *projections.Queries, reads *projections.ReadLimit) error {
	log := s.cfg.Log
	cmds := s.cmds
	// The micro service (package microsvc: answers sent after a handler returns, by the writer
	// or a query's goroutine, still count in $SRV.STATS).
	var err error
	s.svc, err = microsvc.Add(s.svcNC, microsvc.Config{
		Name: commands.ServiceName, Version: buildinfo.Version(),
		Description:  "creditledger: event-sourced credits ledger (commands ledger.cmd.*, queries ledger.query.*)",
		StatsHandler: cmds.EndpointStats, // writer-answered rejections by code per command endpoint
	})
	if err != nil {
		return fmt.Errorf("micro service: %w", err)
	}
	s.guarded = s.guardReplies(s.svc) // only requests with an inbox reply are served: responder.go
	if err := cmds.Register(s.guarded); err != nil {
		return err
	}
	if err := projections.Register(runCtx, s.guarded, queries, log.With().Str("component", "queries").Logger(), s.queryOptions()...); err != nil {
		return err
	}
	if s.cfg.HTTPListen == "" {
		return nil
	}
	// The dashboard's routes (/, /assets/, /v1/accounts/{id}/events|history) beside the JSON API.
	s.httpStop = make(chan struct{})
	handler, err := web.Handler(s.proj, jetstore.DirectReads{Store: s.store}, projections.Handler(queries, s.healthy),
		web.WithStop(s.httpStop), web.WithReadLimit(reads))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", s.cfg.HTTPListen, err)
	}
	s.httpAddr = ln.Addr().String()
	s.http = &http.Server{
		Handler:           s.wrapHTTP(handler), // auth, bounds, /readyz, /metrics: httpauth.go
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	s.goRun(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http server stopped")
		}
	})
	return nil
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) healthy() error {
	if !s.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	return nil
}

// dial opens one of the process's NATS connections; every connection the ledger makes goes
// through here, so connection options (credentials, TLS) live in one place. responder asks for
// the identity that answers requests (the other connections append and read).
func (s *Server) dial(name string, responder bool) (*nats.Conn, error) {
	opts, err := s.connOptions(name, responder) // identity, TLS: security.go
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", s.url, err)
	}
	return nc, nil
}

func newEventID() string { return uuid.Must(uuid.NewV7()).String() }

// ClientURL is the NATS URL clients use to reach this ledger.
func (s *Server) ClientURL() string {
	if s.ns != nil {
		return s.ns.ClientURL()
	}
	return s.cfg.NATSURL
}

// HTTPAddr is the HTTP API's bound address.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// Head is the last stream position the writer committed.
func (s *Server) Head() uint64 { return s.writer.Head() }

// Sweep asks the expiry processor to run now (tests move a manual clock, then sweep).
func (s *Server) Sweep() { s.writer.Sweep() }

// WriterStats reports the writer's running totals.
func (s *Server) WriterStats() writer.Stats { return s.writer.Stats() }

// Projector exposes the read models (tests and in-process tools).
func (s *Server) Projector() *projections.Projector { return s.proj }

// Shutdown stops taking requests, lets the writer finish its in-flight append (queued commands
// are answered unavailable), then stops the projector, the connection and the embedded server.
func (s *Server) Shutdown(ctx context.Context) {
	s.stopOnce.Do(func() {
		if s.svc != nil {
			_ = s.svc.Stop()
		}
		if s.http != nil {
			close(s.httpStop) // open dashboard streams end (web.WithStop)
			_ = s.http.Shutdown(ctx)
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		if s.prod.leases != nil {
			s.prod.leases.Close()
		}
		if s.cmds != nil && !s.cmds.AwaitForwards(ctx) {
			s.cfg.Log.Warn().Int("commands", s.cmds.Forwarding()).Msg("stopping before the commands passed on to their owners were answered")
		}
		s.stopAuditReads()
		if s.svcNC != nil {
			s.svcNC.Close()
		}
		if s.nc != nil {
			s.nc.Close()
		}
		if s.ns != nil {
			s.stopEmbedded() // a cluster node hands its leaderships over first: cluster.go
		}
		_ = s.dirLock.Close() // last: the store is closed
	})
}

// localSnapshots is the file store for snapshots when this process embeds the only NATS server
// of its stream and so owns the disk (snapfile.go); nil otherwise.
func (s *Server) localSnapshots() *fileSnapshots {
	if s.ns == nil || s.multiNode() || s.cfg.DataDir == "" {
		return nil
	}
	return &fileSnapshots{dir: filepath.Join(s.cfg.DataDir, "snapshots")}
}

// writerSnapshots is where the writer keeps its snapshots: local files for a lone embedded
// node, otherwise whatever the cluster rules allow (cluster.go).
func (s *Server) writerSnapshots(sn *jetstore.Snapshots) writer.SnapshotStore {
	if local := s.localSnapshots(); local != nil {
		return local
	}
	return s.snapshots(sn)
}

// projectionSnapshots is where the projector checkpoints: local files for a lone embedded node;
// otherwise the shared bucket under this node's name (each node's projections are a prefix of
// the one stream, and separate names keep nodes from writing one object at once).
func (s *Server) projectionSnapshots(sn *jetstore.Snapshots) projections.SnapshotStore {
	if local := s.localSnapshots(); local != nil {
		return local
	}
	if sn != nil && s.multiNode() {
		return sn.ForNode(s.nodeName())
	}
	return sn
}
