package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/partition"
	"github.com/creditledger/creditledger/writer"
)

// ClusterReplicas is the LEDGER stream's replica count in a cluster of at least that many nodes.
const ClusterReplicas = 3

// Cluster start-up bounds: how often a waiting node says so, how long one attempt to open the
// LEDGER stream may take, and the pause between attempts. The whole wait is bounded by the
// start context.
const (
	clusterWaitLog     = 5 * time.Second
	clusterOpenTimeout = 5 * time.Second
	clusterOpenPause   = 250 * time.Millisecond
	// firstLoadAttempt bounds one attempt at the node's first share of the partitions: their
	// fence and their load, which grows with the store (a third of 100k accounts took more than
	// clusterOpenTimeout on a busy 2-core machine, and every attempt cut short began the whole
	// load again). The load's own reads are bounded; this only ends a hang.
	firstLoadAttempt = 5 * time.Minute
	// A node stopping in lame-duck mode hands over its raft leaderships (about a second), then
	// closes the clients still connected over lameDuckDuration so they move to other nodes.
	lameDuckDuration = 2 * time.Second
	lameDuckGrace    = 250 * time.Millisecond
)

// ClusterConfig makes the embedded server one node of a JetStream cluster: every node runs the
// command, projection and query services against one replicated LEDGER stream.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// Listen is HOST:PORT of this node's route listener.
	Listen string
	// Routes are the other nodes' route URLs (nats://host:port); this node's own is ignored.
	Routes []string
}

// Enabled reports whether the embedded server is to join a cluster.
func (c ClusterConfig) Enabled() bool { return c.Name != "" || c.Listen != "" || len(c.Routes) > 0 }

// ErrOpenRoutes refuses a cluster node whose access config gives no route credentials. A route
// is another server of the cluster: what it sends is not checked against any permission, so a
// server of anyone's that reached the route listener could join and publish events, answer on
// the ledger's internal subjects or read every reply. Route TLS alone does not stop it: it checks
// only that a certificate comes from the CA, which under --tls-verify signs the clients' too.
var ErrOpenRoutes = errors.New("cluster: the access config has no nats.cluster route user; without one any server that reaches " +
	"--cluster-listen joins the cluster with no permissions (its clients could publish events and read every reply): " +
	"give nats.cluster {user, password}, the same on every node (docs/SECURITY.md)")

// applyCluster sets the route listener, the routes (with the access config's route
// credentials) and route TLS (always mutual) in the embedded server's options.
func applyCluster(opts *natsserver.Options, cfg EmbeddedConfig) error {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil
	}
	if c.Name == "" || c.Listen == "" || cfg.ServerName == "" {
		return errors.New("cluster: --cluster-name, --cluster-listen and --server-name are all required")
	}
	host, port, err := splitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("cluster listen: %w", err)
	}
	opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = c.Name, host, port
	opts.LameDuckDuration, opts.LameDuckGracePeriod = lameDuckDuration, lameDuckGrace
	var ra *authz.RouteAuth
	if cfg.Auth != nil {
		if ra = cfg.Auth.NATS.Cluster; ra == nil {
			return ErrOpenRoutes
		}
	}
	if ra != nil {
		opts.Cluster.Username, opts.Cluster.Password = ra.User, ra.Password
	}
	for _, r := range c.Routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" {
			return fmt.Errorf("cluster route %q: want nats://host:port", r)
		}
		if ra != nil {
			u.User = url.UserPassword(ra.User, ra.Password)
		}
		opts.Routes = append(opts.Routes, u)
	}
	if !cfg.TLS.Enabled() {
		return nil
	}
	if cfg.TLS.CA == "" {
		return errors.New("cluster: TLS on routes is mutual; give --tls-ca")
	}
	tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{
		CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, CaFile: cfg.TLS.CA, Verify: true, Timeout: tlsTimeout,
	})
	if err != nil {
		return fmt.Errorf("cluster tls: %w", err)
	}
	// A node is both client and server on routes: it verifies peers it dials against the same CA
	// (as nats-server's own cluster tls block does).
	tc.RootCAs = tc.ClientCAs
	opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, tlsTimeout
	return nil
}

func splitHostPort(hp string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", portStr, err)
	}
	return host, port, nil
}

// waitJetStream waits, as long as ctx allows, until a clustered server's JetStream meta group
// has a leader this node follows: before that no stream can be created or opened.
func waitJetStream(ctx context.Context, ns *natsserver.Server, cfg Config) error {
	if !cfg.Cluster.Enabled() {
		return nil
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	start, logged := time.Now(), time.Now()
	for !ns.JetStreamIsCurrent() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: JetStream has no meta leader after %s (are a majority of nodes up?): %w",
				cfg.Cluster.Name, time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-tick.C:
		}
		if time.Since(logged) >= clusterWaitLog {
			logged = time.Now()
			cfg.Log.Warn().Str("cluster", cfg.Cluster.Name).Dur("waited", time.Since(start)).
				Msg("waiting for a majority of cluster nodes to elect a JetStream meta leader")
		}
	}
	return nil
}

// stopEmbedded stops the embedded server. A cluster node stops in lame-duck mode: it first hands
// the leadership of every stream and of the meta group to another node, so the survivors go on
// at once instead of waiting out an election (an abrupt stop costs one: several seconds).
func (s *Server) stopEmbedded() {
	if s.cfg.Cluster.Enabled() {
		s.ns.LameDuckShutdown()
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// multiNode reports whether other ledger processes may share this node's streams: on a cluster
// node or with NATSURL. Such a node keeps its projection checkpoints in the shared bucket under
// its own name; a lone embedded node keeps its snapshots in files.
func (s *Server) multiNode() bool {
	return s.cfg.Cluster.Enabled() || s.cfg.NATSURL != ""
}

// resolveReplicas is the replica count for the streams the ledger creates: Config.Replicas when
// set; else ClusterReplicas when the embedded server is a node of a cluster of at least that many
// nodes (counted from the routes); else 1.
func (s *Server) resolveReplicas() int {
	if s.cfg.Replicas > 0 {
		return s.cfg.Replicas
	}
	if s.cfg.NATSURL == "" && ClusterSize(s.cfg.Cluster, s.cfg.ServerName) >= ClusterReplicas {
		return ClusterReplicas
	}
	return 1
}

// ClusterSize counts the nodes a cluster config names: this node plus every distinct route that
// is not its own route address.
func ClusterSize(c ClusterConfig, serverName string) int {
	if !c.Enabled() {
		return 1
	}
	seen := map[string]bool{}
	for _, r := range c.Routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" || isSelf(u.Host, c.Listen, serverName) {
			continue
		}
		seen[strings.ToLower(u.Host)] = true
	}
	return len(seen) + 1
}

// isSelf reports whether a route address is this node's own route listener.
func isSelf(route, listen, serverName string) bool {
	rh, rp, err := net.SplitHostPort(route)
	if err != nil {
		return false
	}
	lh, lp, err := net.SplitHostPort(listen)
	if err != nil || rp != lp {
		return false
	}
	if strings.EqualFold(rh, lh) || strings.EqualFold(rh, serverName) {
		return true
	}
	if hn, err := os.Hostname(); err == nil && strings.EqualFold(rh, hn) {
		return true
	}
	if lh != "" && lh != "0.0.0.0" && lh != "::" {
		return false // bound to one address, and the route names another
	}
	addrs, err := net.LookupHost(rh)
	if err != nil {
		return false
	}
	local, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		for _, l := range local {
			if ipn, ok := l.(*net.IPNet); ok && ipn.IP.String() == a {
				return true
			}
		}
	}
	return false
}

// openShared prepares what every node shares with the others (a single node is a cluster of
// one): the id reservations bucket (so no two accounts ever hold one license id, whichever
// nodes write them), the command ids bucket (so no command_id is decided for two accounts of
// partitions that two nodes write), the lease bucket, the checkpoint stream, and a warning when the LEDGER
// stream has fewer replicas than this cluster calls for.
func (s *Server) openShared(ctx context.Context) error {
	js := s.store.JetStream()
	if err := s.retryJS(ctx, "the lease bucket", func(ctx context.Context) error {
		leases, err := jetstore.OpenLeases(ctx, js, s.cfg.Replicas, s.cfg.Partitions.LeaseTTL)
		if err == nil {
			s.prod.leases = leases
		}
		return err
	}); err != nil {
		return err
	}
	var claims *jetstore.Claims
	err := s.retryJS(ctx, "the id reservations", func(ctx context.Context) (err error) {
		claims, err = jetstore.OpenClaims(ctx, js, s.cfg.Replicas)
		if err == nil {
			s.prod.claims, s.prod.subscriptions = claims, subscriptionClaims{claims}
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := s.retryJS(ctx, "the command ids", func(ctx context.Context) error {
		commands, err := jetstore.OpenCommandClaims(ctx, js, s.cfg.Replicas)
		if err == nil {
			s.prod.commands = commands
		}
		return err
	}); err != nil {
		return err
	}
	if err := s.retryJS(ctx, "the id reservations' mark", func(ctx context.Context) error {
		return claims.CheckKept(ctx, s.store)
	}); err != nil {
		return err
	}
	if !s.cfg.Checkpoints.Disabled {
		// Created here, with retries, so the checkpoint publisher finds it (see retryJS).
		err := s.retryJS(ctx, "the checkpoint stream", func(ctx context.Context) error {
			if _, err := js.Stream(ctx, audit.CheckpointStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
				return err
			}
			_, err := js.CreateStream(ctx, audit.CheckpointStreamConfig(s.cfg.Replicas))
			return err
		})
		if err != nil {
			return err
		}
	}
	st, err := js.Stream(ctx, jetstore.StreamName)
	if err != nil {
		return fmt.Errorf("stream %s: %w", jetstore.StreamName, err)
	}
	if have := st.CachedInfo().Config.Replicas; have < s.cfg.Replicas {
		s.cfg.Log.Warn().Int("replicas", have).Int("want", s.cfg.Replicas).
			Msg("the LEDGER stream has fewer replicas than this cluster calls for; raise them with `nats stream edit LEDGER --replicas N`")
	}
	return nil
}

// openSnapshots opens the snapshot bucket, retrying while a cluster forms (retryJS). Processes
// sharing the stream keep their projections' checkpoints under their node name (concurrent puts
// of one object stall each other); the writer keeps none there (see snapshots).
func (s *Server) openSnapshots(ctx context.Context) (*jetstore.Snapshots, error) {
	var sn *jetstore.Snapshots
	err := s.retryJS(ctx, "the snapshot bucket", func(ctx context.Context) (err error) {
		sn, err = jetstore.OpenSnapshots(ctx, s.store.JetStream(), s.cfg.Replicas)
		return err
	})
	return sn, err
}

// nodeName names this process among those sharing the stream: the server name, else the host.
func (s *Server) nodeName() string {
	if s.cfg.ServerName != "" {
		return s.cfg.ServerName
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "ledger"
}

// leaseName names this process in the lease table: the server name when one is given (stable
// and unique: a restarted node takes its own leases back at once), else a name of this run
// alone (two processes on one host must never share lease names).
func (s *Server) leaseName() string {
	if s.cfg.ServerName != "" {
		return s.cfg.ServerName
	}
	return s.nodeName() + "-" + uuid.NewString()[:8]
}

// snapshots is the writer's snapshot store in the shared bucket: a whole snapshot from a writer
// that owns every partition, one per partition from a writer that holds some (writer/partsnap.go),
// each valid for whichever node holds that partition next.
func (s *Server) snapshots(sn *jetstore.Snapshots) writer.SnapshotStore {
	if sn == nil {
		return nil
	}
	return sn.WithSaveTimeout(writerSaveTimeout)
}

// writerSaveTimeout bounds the save of one writer snapshot object in the shared bucket: a node
// that stops after its peers (no quorum left) gives up on its hand-over snapshot after this
// rather than after the writer's minute. Measured: a partition's object saves in 3-200 ms.
const writerSaveTimeout = 5 * time.Second

// newNode makes this node's partition keeper and the factory of its writers (partitions.go).
func (s *Server) newNode(ctx context.Context, rejLog *jetstore.RejectionLog, rules ledger.Rules, snaps *jetstore.Snapshots) (*node, error) {
	cfg := s.cfg
	n := &node{log: cfg.Log.With().Str("component", "partitions").Logger(), n: s.store.Partitions(),
		subs: map[int]*nats.Subscription{}, changed: make(chan struct{}, 1), stopped: make(chan struct{})}
	writerSnaps := s.writerSnapshots(snaps)
	name := s.leaseName()
	n.fences, n.owner, n.clock = s.store, fenceOwner(name), cfg.Clock
	n.newWriter = func(holds func(string) bool, owner fencedOwner, held []int) (*writer.Writer, error) {
		o := writer.Options{
			Rejections: s.hookRejections(rejLog), Holds: holds, Owner: owner, Fences: owner,
			Store: s.hookStore(s.store), Rules: rules, Clock: cfg.Clock, NewID: newEventID, Log: cfg.Log.With().Str("component", "writer").Logger(),
			SweepInterval: cfg.SweepInterval, Claims: s.prod.claims, SnapshotEvery: cfg.SnapshotEvery,
			Subscriptions: s.prod.subscriptions, Commands: s.prod.commands, RecordEveryCommand: s.multiNode(),
			MaxInflight: cfg.MaxInflight, Linger: cfg.Linger,
			Snapshots: writerSnaps, Partitions: writer.Partitions{Count: n.n, Held: held},
		}
		return writer.New(o)
	}
	n.serve = func(p int) (*nats.Subscription, error) { return s.cmds.ServeOwner(s.svcNC, p, n) }
	// Answering probes before the first heartbeat: a member always answers (alive.go).
	alive, err := serveAlive(s.svcNC, name)
	if err != nil {
		return nil, err
	}
	n.alive = alive
	keeper, err := partition.NewKeeper(partition.Config{
		Node: name, Partitions: n.n, Leases: s.hookLeases(s.prod.leases), Tick: cfg.Partitions.Tick,
		Drain: n.Drain, Changed: n.notify, Log: n.log, Now: s.leaseClock(), Probe: probeAlive(s.svcNC),
	})
	if err != nil {
		return nil, err
	}
	n.keeper = keeper
	n.tick = cfg.Partitions.Tick
	if n.tick <= 0 {
		n.tick = s.prod.leases.TTL() / 5
	}
	_ = ctx
	return n, nil
}

// openStore opens (or creates) the LEDGER stream, retrying while a cluster forms (retryJS).
func (s *Server) openStore(ctx context.Context) (*jetstore.Store, error) {
	var st *jetstore.Store
	err := s.retryJS(ctx, "the LEDGER stream", func(ctx context.Context) (err error) {
		st, err = jetstore.Open(ctx, s.nc, jetstore.Config{Replicas: s.cfg.Replicas, Partitions: s.cfg.Partitions.Count})
		return err
	})
	return st, err
}

// retryJS runs one JetStream set-up step. On a cluster node it tries again while the cluster is
// still forming: a new meta leader may not yet know enough peers to place three replicas ("no
// suitable peers"), and one of several identical creates racing from different nodes can go
// unanswered. Each attempt is bounded; the whole wait is bounded by ctx. Anything else (a
// stream with weaker settings, say) fails at once.
func (s *Server) retryJS(ctx context.Context, what string, step func(context.Context) error) error {
	return s.retryJSWithin(ctx, what, clusterOpenTimeout, step)
}

// firstPartitions runs load, the node's first share of the partitions (node.load), retried while
// a cluster forms, each attempt bounded by firstLoadAttempt.
func (s *Server) firstPartitions(ctx context.Context, load func(context.Context) error) error {
	return s.retryJSWithin(ctx, "the first partitions", firstLoadAttempt, load)
}

// retryJSWithin is retryJS with each attempt bounded by attempt instead of clusterOpenTimeout.
func (s *Server) retryJSWithin(ctx context.Context, what string, attempt time.Duration, step func(context.Context) error) error {
	if !s.cfg.Cluster.Enabled() {
		return step(ctx)
	}
	start, logged := time.Now(), time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := step(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !transientJS(err) || ctx.Err() != nil {
			return err
		}
		if time.Since(logged) >= clusterWaitLog {
			logged = time.Now()
			s.cfg.Log.Warn().Err(err).Dur("waited", time.Since(start)).Msg("waiting for the cluster to place " + what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(clusterOpenPause):
		}
	}
}

// transientJS reports whether a JetStream error can pass while a cluster forms.
func transientJS(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.ErrorCode == errCodeNoSuitablePeers || apiErr.ErrorCode == errCodeInsufficientResources ||
			apiErr.ErrorCode == errCodeStreamNotFound
	}
	// A stream just created (here or by another node) can be unknown for a moment to the node
	// asked next; every step retried here creates the stream it then finds missing. A stream
	// whose replicas have not elected a leader yet answers a publish (a lease heartbeat, say)
	// with no responders: "no response from stream".
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoStreamResponse)
}

// JetStream error codes of a cluster that cannot place a stream yet.
const (
	errCodeNoSuitablePeers       = 10005
	errCodeInsufficientResources = 10023
	errCodeStreamNotFound        = 10059
)

// subscriptionClaims adapts *jetstore.Claims to writer.SubscriptionClaims.
type subscriptionClaims struct{ c *jetstore.Claims }

func (a subscriptionClaims) Subscription(ctx context.Context, id string) (writer.SubscriptionClaim, error) {
	sc, err := a.c.Subscription(ctx, id)
	return writer.SubscriptionClaim{Holder: sc.Holder, Previous: sc.Previous, At: sc.At, Revision: sc.Revision}, err
}

func (a subscriptionClaims) ClaimSubscription(ctx context.Context, id string, c writer.SubscriptionClaim, revision uint64) (uint64, error) {
	rev, err := a.c.ClaimSubscription(ctx, id, jetstore.SubscriptionClaim{Holder: c.Holder, Previous: c.Previous, At: c.At}, revision)
	if errors.Is(err, jetstore.ErrClaimMoved) {
		err = fmt.Errorf("%w: %v", writer.ErrClaimMoved, err)
	}
	return rev, err
}

// lostLogGrace is how long a start waits for a rejection log that LEDGER records but the
// cluster does not show: a log another node created a moment ago can be unknown to the node asked
// next, one deleted stays missing.
const lostLogGrace = 30 * time.Second

// lostLog ends the retries of a rejection log that stays lost. jetstore.ErrRejectionsLost for a
// missing log wraps the API's "stream not found", which retryJS takes for a cluster still
// forming; retried for ever, a node whose log was deleted waited without end instead of refusing
// to start (review13).
type lostLog struct {
	grace time.Duration
	now   func() time.Time
	since time.Time // when the log was first found missing; zero while it was not
}

// check passes err on, except a lost log past the grace: that is returned without the API error,
// so that retryJS gives up.
func (l *lostLog) check(err error) error {
	if !errors.Is(err, jetstore.ErrRejectionsLost) {
		l.since = time.Time{}
		return err
	}
	if l.since.IsZero() {
		l.since = l.now()
	}
	if l.now().Sub(l.since) < l.grace {
		return err
	}
	rest := strings.TrimPrefix(err.Error(), jetstore.ErrRejectionsLost.Error())
	return fmt.Errorf("%w%s (still missing after %s)", jetstore.ErrRejectionsLost, rest, l.grace)
}
