package productiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// node is one member of a test cluster; it can be stopped and started again on the same data
// directory and ports.
type node struct {
	mu  sync.Mutex
	cfg server.Config
	srv *server.Server
}

func (n *node) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, n.cfg)
	require.NoError(t, err, n.cfg.ServerName)
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

func (n *node) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown(context.Background())
	}
}

// kill stops the node abruptly (server.Kill: no hand-over of leases or raft leaderships).
func (n *node) kill() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Kill()
	}
}

func (n *node) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// freePorts reserves n loopback ports (routes must name each other's ports in advance).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		require.NoError(t, l.Close())
	}
	return ports
}

// startCluster starts three nodes concurrently (each waits for a JetStream meta leader, which
// needs a majority) with TLS on the client ports and mutual TLS on the routes; each of opts
// adjusts every node's configuration.
func startCluster(t *testing.T, opts ...func(*server.Config)) ([]*node, []string) {
	t.Helper()
	ca := newCA(t, "cluster")
	cert, key := ca.issue(t, "node")
	ports := freePorts(t, 6)
	var routes, urls []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
		urls = append(urls, fmt.Sprintf("tls://127.0.0.1:%d", ports[i]))
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		cfg := baseConfig(t)
		cfg.NATSListen = fmt.Sprintf("127.0.0.1:%d", ports[i])
		cfg.ServerName = fmt.Sprintf("n%d", i+1)
		cfg.Log = cfg.Log.With().Str("node", cfg.ServerName).Logger()
		cfg.Cluster = server.ClusterConfig{Name: "ledger-test", Listen: fmt.Sprintf("127.0.0.1:%d", ports[3+i]), Routes: routes}
		cfg.TLS = server.TLSFiles{Cert: cert, Key: key, CA: ca.CA}
		cfg.Checkpoints.Disabled = true
		for _, o := range opts {
			o(&cfg)
		}
		nodes[i] = &node{cfg: cfg}
	}
	// Stop the nodes together: one left alone has no quorum, and its final projections checkpoint
	// would wait out its timeout.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.stop()
			}()
		}
		wg.Wait()
	})
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.start(t)
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	return nodes, urls
}

// dialCluster connects to node first (then the others, in order) trusting the cluster's CA.
func dialCluster(t *testing.T, urls []string, first int, ca string) *nats.Conn {
	t.Helper()
	order := append(append([]string{}, urls[first:]...), urls[:first]...)
	nc, err := nats.Connect(strings.Join(order, ","), nats.RootCAs(ca), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.Timeout(2*time.Second))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// ack is one acknowledged command of the load.
type ack struct {
	account  string
	position uint64
}

// TestThreeNodeCluster runs a command load through three nodes, kills the LEDGER stream's leader
// mid-load and later starts it again, and shows: every acknowledged command is in the stream
// exactly once, commands keep succeeding through the survivors, every node's projections
// converge to the same balances, and license ids stay unique across nodes.
func TestThreeNodeCluster(t *testing.T) {
	t.Parallel()
	nodes, urls := startCluster(t)
	caFile := nodes[0].cfg.TLS.CA
	conns := []*nats.Conn{dialCluster(t, urls, 0, caFile), dialCluster(t, urls, 1, caFile), dialCluster(t, urls, 2, caFile)}
	for _, nc := range conns {
		waitServing(t, nc)
	}
	// The set-up below asks for a first answer within waitFor; while the nodes that started
	// together still hand partitions to one another, a command can wait that long for an owner
	// (a purchase timed out so in a CI run). The takeover under load is what this test probes.
	waitSplit(t, nodes[0].server(), nodes[1].server(), nodes[2].server())
	js, err := jetstream.New(conns[0])
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	assert.Equal(t, 3, st.CachedInfo().Config.Replicas, "LEDGER is R3 in a cluster of three")

	const accounts = 12
	setup := client(t, conns[0])
	for i := 0; i < accounts; i++ {
		acct := fmt.Sprintf("acct-%02d", i)
		_, err := setup.PurchaseLicense(ctxT(t), purchase("setup-p-"+acct, acct, "L-"+acct, "1000000"))
		require.NoError(t, err)
		_, err = setup.ActivateLicense(ctxT(t), activate("setup-a-"+acct, acct, "L-"+acct))
		require.NoError(t, err)
	}

	t.Run("license ids unique across nodes", func(t *testing.T) { licenseUniqueness(t, conns) })

	var (
		mu     sync.Mutex
		acked  = map[string]ack{}
		failed []error
		total  atomic.Int64
		gaveUp atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, _ := commands.NewClient(conns[w%3], 3*time.Second)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				acct := fmt.Sprintf("acct-%02d", rng.IntN(accounts))
				id := fmt.Sprintf("load-w%d-%d", w, seq)
				a, ok, err := sendUntilAcked(cl, allocate(id, acct, "1"), stop)
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
					return
				}
				if !ok {
					gaveUp.Add(1)
					continue
				}
				mu.Lock()
				acked[id] = ack{account: acct, position: a.Position}
				mu.Unlock()
				total.Add(1)
			}
		}()
	}
	waitAcks := func(n int64, what string) {
		target := total.Load() + n
		require.Eventually(t, func() bool { return total.Load() >= target }, 60*time.Second, pollTick, what)
	}
	waitAcks(150, "load before the stop")

	// Kill the stream leader (no lame-duck hand-over, its partition leases lapse): the cluster
	// must elect another leader, the survivors take its partitions over, and the load goes on.
	info, err := st.Info(ctxT(t))
	require.NoError(t, err)
	victim := 0
	for i, n := range nodes {
		if n.cfg.ServerName == info.Cluster.Leader {
			victim = i
		}
	}
	t.Logf("killing %s (LEDGER leader) after %d acks", nodes[victim].cfg.ServerName, total.Load())
	stopped := time.Now()
	nodes[victim].kill()
	waitAcks(150, "commands through the survivors")
	t.Logf("150 acks through the survivors %s after the kill", time.Since(stopped).Round(time.Millisecond))

	restartAt := time.Now()
	nodes[victim].start(t)
	t.Logf("%s restarted in %s", nodes[victim].cfg.ServerName, time.Since(restartAt).Round(time.Millisecond))
	waitAcks(150, "load after the restart")
	// The restarted node serves commands itself (the load's clients moved to the survivors).
	only := dialCluster(t, urls[victim:victim+1], 0, caFile)
	waitServing(t, only)
	_, err = client(t, only).AllocateCredits(ctxT(t), allocate("after-restart", "acct-00", "1"))
	require.NoError(t, err, "a command through the restarted node")
	close(stop)
	wg.Wait()
	t.Logf("%d commands acknowledged, %d given up", total.Load(), gaveUp.Load())
	require.Empty(t, failed, "no command may be rejected other than unavailable")
	mu.Lock()
	acked["after-restart"] = ack{account: "acct-00"}
	mu.Unlock()

	// Every acknowledged command is in the stream exactly once; the chain is intact.
	events := readAll(t, conns[0])
	perCommand := map[string]int{}
	allocs := map[string]int{}
	for _, e := range events {
		perCommand[e.CommandID]++
		if e.Type == "CreditsAllocated" {
			allocs[e.AccountID]++
		}
	}
	mu.Lock()
	for id, a := range acked {
		assert.Equal(t, 1, perCommand[id], "command %s (position %d)", id, a.position)
	}
	mu.Unlock()
	for id, n := range perCommand {
		assert.Equal(t, 1, n, "command %s appended %d times", id, n)
	}
	src, err := audit.NewSource(ctxT(t), conns[0])
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "hash chains and versions: %v", rep.Findings)

	// Every node's projections converge to the same balances, which match the stream.
	// The stream's head, not the event count: the ownership records the nodes wrote at start
	// and on every takeover take positions too.
	head := streamHead(t, conns[0])
	for _, n := range nodes {
		srv := n.server()
		require.NotNil(t, srv)
		require.NoError(t, srv.Projector().WaitFor(ctxT(t), head), n.cfg.ServerName)
		for i := 0; i < accounts; i++ {
			acct := fmt.Sprintf("acct-%02d", i)
			b := balanceOf(t, "http://"+srv.HTTPAddr(), acct, head)
			assert.Equal(t, fmt.Sprint(allocs[acct]), b.Allocated, "%s on %s", acct, n.cfg.ServerName)
			assert.Equal(t, "1000000", b.Total, "%s on %s", acct, n.cfg.ServerName)
		}
	}
	var retried uint64
	for _, n := range nodes {
		retried += n.server().WriterStats().Retried
	}
	t.Logf("commands re-decided after a conflict or failed append, all nodes: %d", retried)
}

// sendUntilAcked retries one command (same command_id) until it is acknowledged, through
// whichever node the connection reaches (bounded attempts); a rejection other than unavailable
// is returned as an error.
func sendUntilAcked(cl *commands.Client, cmd commands.AllocateCredits, stop chan struct{}) (commands.Accepted, bool, error) {
	for attempt := 0; attempt < 40; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		a, err := cl.AllocateCredits(ctx, cmd)
		cancel()
		if err == nil {
			return a, true, nil
		}
		var le *ledger.Error
		if errors.As(err, &le) && le.Code != ledger.CodeUnavailable {
			return commands.Accepted{}, false, fmt.Errorf("command %s rejected: %w", cmd.CommandID, err)
		}
		select {
		case <-stop:
			if attempt > 20 {
				return commands.Accepted{}, false, nil
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	return commands.Accepted{}, false, nil
}

// licenseUniqueness buys license ids for two accounts through two different nodes: first one
// after the other, then both at once; exactly one account ever holds each id.
func licenseUniqueness(t *testing.T, conns []*nats.Conn) {
	a, b := client(t, conns[0]), client(t, conns[2])
	_, err := a.PurchaseLicense(ctxT(t), purchase("u-1", "acct-u1", "L-unique", "10"))
	require.NoError(t, err)
	_, err = b.PurchaseLicense(ctxT(t), purchase("u-2", "acct-u2", "L-unique", "10"))
	require.ErrorIs(t, err, ledger.ErrAlreadyExists, "the other node knows L-unique is taken")

	for i := 0; i < 10; i++ {
		lic := fmt.Sprintf("L-race-%d", i)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for j, cl := range []*commands.Client{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := cl.PurchaseLicense(ctxT(t), purchase(fmt.Sprintf("race-%d-%d", i, j), fmt.Sprintf("acct-r%d", j), lic, "10"))
				if err == nil {
					wins.Add(1)
				} else {
					assert.ErrorIs(t, err, ledger.ErrAlreadyExists)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(1), wins.Load(), lic)
	}
}

// storedEvent is the part of an envelope the cluster test reads.
type storedEvent struct {
	Type      string `json:"type"`
	AccountID string `json:"account_id"`
	CommandID string `json:"command_id"`
	Version   uint64 `json:"version"`
}

// readAll reads the whole LEDGER stream.
func readAll(t *testing.T, nc *nats.Conn) []storedEvent {
	t.Helper()
	head := streamHead(t, nc)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := ctxT(t)
	st, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	// Ownership records are read (and skipped) so that the loop ends at the head whatever it holds.
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{jetstore.SubjectAll, jetstore.FenceAll}})
	require.NoError(t, err)
	it, err := cons.Messages()
	require.NoError(t, err)
	defer it.Stop()
	var out []storedEvent
	for read := uint64(0); read < head; read++ {
		m, err := it.Next()
		require.NoError(t, err)
		if strings.HasPrefix(m.Subject(), jetstore.FencePrefix) {
			continue
		}
		var e storedEvent
		require.NoError(t, json.Unmarshal(m.Data(), &e))
		out = append(out, e)
	}
	return out
}

type balanceAnswer struct {
	Total     string `json:"total_credits"`
	Allocated string `json:"allocated_credits"`
	Position  uint64 `json:"position"`
}

func balanceOf(t *testing.T, base, account string, minPos uint64) balanceAnswer {
	t.Helper()
	status, body := httpDo(t, fmt.Sprintf("%s/v1/accounts/%s/balance?min_position=%d", base, account, minPos), "")
	require.Equal(t, 200, status, body)
	var b balanceAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &b))
	return b
}

// TestSecuredClusterAuditor: with the access config, the auditors' account (authz.AuditAccount)
// works across a cluster: an auditor on one node verifies what the service wrote through
// another, and its reads' answers still cannot reach the replicated streams. The routes
// authenticate (nats.cluster), and a command a node passes to its account's owner carries none
// of the requester's headers.
func TestSecuredClusterAuditor(t *testing.T) {
	// Not parallel: a second three-node cluster beside TestThreeNodeCluster's, on a small machine
	// under -race, slowed that one past its deadlines.
	acc := writeAccess(t)
	nodes, urls := startCluster(t, func(c *server.Config) { c.Auth = acc.Config; c.HTTPListen = "" })
	ca := nodes[0].cfg.TLS.CA
	svcOpts := asService(acc)
	svcOpts.TLSCA = ca
	svc, _ := as(t, urls[0], svcOpts)
	waitServing(t, svc)
	waitSplit(t, nodes[0].server(), nodes[1].server(), nodes[2].server()) // no owner moves during the purchase
	// A command on an account another node owns, with a trace header naming the service's own
	// command subject, is passed to its owner (its body only) and decided at once: passed on, the
	// header made the server drop the responder's forward (commands/service).
	elsewhere := accountOn(t, nodes[1].server(), "fwd")
	m := nats.NewMsg(commands.Subject("purchase_license"))
	m.Header.Set("Nats-Trace-Dest", commands.Subject("purchase_license"))
	var err error
	m.Data, err = json.Marshal(purchase("c-fwd", elsewhere, "L-fwd", "10"))
	require.NoError(t, err)
	fwd, err := svc.RequestMsg(m, waitFor)
	require.NoError(t, err)
	require.Contains(t, string(fwd.Data), `"ok":true`, "the forwarded command was not decided: %s", fwd.Data)
	res, err := client(t, svc).PurchaseLicense(ctxT(t), purchase("c-1", "victim", "L-c", "10"))
	require.NoError(t, err)
	ledgerOpts := asLedger()
	ledgerOpts.TLSCA = ca
	admin, _ := as(t, urls[1], ledgerOpts)
	before := streamHeads(t, admin)
	before[jetstore.StreamName] = ledgerEvents(t, admin)

	audOpts := asAuditor()
	audOpts.TLSCA = ca
	aud, ae := as(t, urls[2], audOpts)
	for _, target := range []string{jetstore.DefaultSubjects.Of("victim"), "$JS.API.STREAM.DELETE." + jetstore.RejectionStream} {
		require.NoError(t, aud.PublishMsg(&nats.Msg{Subject: "$JS.API.STREAM.INFO." + jetstore.StreamName, Reply: target}))
		require.NoError(t, aud.PublishMsg(&nats.Msg{Subject: "$JS.API.DIRECT.GET." + jetstore.StreamName, Reply: target, Data: []byte(`{"seq":1}`)}))
	}
	src, err := audit.NewSource(ctxT(t), aud)
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
	// Nothing but ownership records follows the purchase: nodes still settling the split write
	// those themselves (a takeover's fence), never in answer to the auditor.
	_, err = src.Scan(ctxT(t), audit.Filter{FromPosition: res.Position + 1}, func(m audit.Message) error {
		assert.True(t, m.IsFence(), "position %d after the purchase is %s, not an ownership record", m.Position, m.Subject)
		return nil
	})
	require.NoError(t, err)
	_, err = client(t, aud).Query(ctxT(t), "balance", map[string]any{"account_id": "victim", "min_position": res.Position})
	require.NoError(t, err)
	assert.Empty(t, ae.all())
	// The snapshot bucket is written by the nodes themselves whenever a partition is handed over
	// (writer/partsnap.go), and the split may still settle meanwhile; none of the replies above
	// targets it.
	// Likewise LEDGER gains the nodes' own ownership records and LEDGER_CHECKPOINTS their
	// checkpoints over them: LEDGER is compared by its events, the checkpoints not at all.
	after := streamHeads(t, admin)
	after[jetstore.StreamName] = ledgerEvents(t, admin)
	for _, m := range []map[string]uint64{before, after} {
		delete(m, "OBJ_"+jetstore.SnapshotBucket)
		delete(m, audit.CheckpointStream)
	}
	assert.Equal(t, before, after)
}

// ledgerEvents counts LEDGER's events: its messages less the ownership records.
func ledgerEvents(t *testing.T, nc *nats.Conn) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	info, err := st.Info(ctxT(t), jetstream.WithSubjectFilter(jetstore.FenceAll))
	require.NoError(t, err)
	n := info.State.Msgs
	for _, c := range info.State.Subjects {
		n -= c
	}
	return n
}
