package productiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// storeFaultSoak skips a store fault soak (tens of seconds each, a mixed load through
// repeated faults) unless LEDGER_STORE_FAULTS is set: review11 ran them; keep them for a change
// to the writer's failure paths.
func storeFaultSoak(t *testing.T) {
	t.Helper()
	if os.Getenv("LEDGER_STORE_FAULTS") == "" {
		t.Skip("store fault soak: set LEDGER_STORE_FAULTS=1 to run it")
	}
}

// restartableNATS is a plain nats-server with JetStream on a fixed port and store directory,
// which a test stops and starts again (the same store: what it acknowledged survives).
type restartableNATS struct {
	mu   sync.Mutex
	opts natsserver.Options
	ns   *natsserver.Server
}

func newRestartableNATS(t *testing.T) *restartableNATS {
	t.Helper()
	r := &restartableNATS{opts: natsserver.Options{
		Host: "127.0.0.1", Port: freePorts(t, 1)[0], JetStream: true, StoreDir: t.TempDir(),
		SyncAlways: true, NoLog: true, NoSigs: true,
	}}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *restartableNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", r.opts.Port) }

func (r *restartableNATS) start(t *testing.T) {
	t.Helper()
	o := r.opts
	ns, err := natsserver.NewServer(&o)
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	r.mu.Lock()
	r.ns = ns
	r.mu.Unlock()
}

func (r *restartableNATS) stop() {
	r.mu.Lock()
	ns := r.ns
	r.ns = nil
	r.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// faultCmd is one command of a fault load: an allocation or a release of a few credits.
type faultCmd struct {
	release bool
	cmd     any // commands.AllocateCredits or commands.ReleaseCredits
	id      string
	account string
	amount  int64
}

func (c faultCmd) send(ctx context.Context, cl *commands.Client) (commands.Accepted, error) {
	if c.release {
		return cl.ReleaseCredits(ctx, c.cmd.(commands.ReleaseCredits))
	}
	return cl.AllocateCredits(ctx, c.cmd.(commands.AllocateCredits))
}

// faultOutcome is a definite answer: accepted at a position and version, or rejected with a code.
type faultOutcome struct {
	position, version uint64
	code              ledger.Code
}

func (o faultOutcome) String() string {
	if o.code != "" {
		return string(o.code)
	}
	return fmt.Sprintf("accepted@%d/v%d", o.position, o.version)
}

func outcomeOf(a commands.Accepted, err error) (faultOutcome, bool) {
	if err == nil {
		return faultOutcome{position: a.Position, version: a.Version}, true
	}
	if c := code(err); c != "" && c != ledger.CodeUnavailable {
		return faultOutcome{code: c}, true
	}
	return faultOutcome{}, false
}

// faultLoad sends allocations and releases of 1-3 credits on accounts holding few credits, so
// that about as many are rejected (insufficient_credits, insufficient_allocation) as accepted and
// every answer depends on the account's state: a re-decision would often differ. Each command is
// sent until it gets a definite answer (a few attempts); every later answer must be the first.
type faultLoad struct {
	mu           sync.Mutex
	cmds         map[string]faultCmd
	first        map[string]faultOutcome
	contradicted []string
	unavailable  atomic.Int64
	unrecorded   atomic.Int64 // unavailable answers saying the rejection could not be recorded
	answered     atomic.Int64
	stop         chan struct{}
	stopOnce     sync.Once
	wg           sync.WaitGroup
}

func (l *faultLoad) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func startFaultLoad(t *testing.T, url string, accounts []string, workers int, perAttempt time.Duration) *faultLoad {
	t.Helper()
	l := &faultLoad{cmds: map[string]faultCmd{}, first: map[string]faultOutcome{}, stop: make(chan struct{})}
	t.Cleanup(l.halt)
	for w := 0; w < workers; w++ {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		cl := client(t, nc)
		rng := rand.New(rand.NewSource(int64(w)))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-l.stop:
					return
				default:
				}
				c := faultCmd{id: fmt.Sprintf("f-w%d-%d", w, seq), account: accounts[rng.Intn(len(accounts))],
					amount: 1 + rng.Int63n(3), release: rng.Intn(2) == 0}
				meta := commands.Meta{CommandID: c.id, AccountID: c.account}
				amt := commands.MustAmount(fmt.Sprint(c.amount))
				if c.release {
					c.cmd = commands.ReleaseCredits{Meta: meta, Feature: "container_security", Credits: amt}
				} else {
					c.cmd = commands.AllocateCredits{Meta: meta, Feature: "container_security", Credits: amt}
				}
				l.mu.Lock()
				l.cmds[c.id] = c
				l.mu.Unlock()
				for attempt := 0; attempt < 4; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), perAttempt)
					a, err := c.send(ctx, cl)
					cancel()
					if o, ok := outcomeOf(a, err); ok {
						l.note(c.id, o)
						break
					}
					l.unavailable.Add(1)
					if err != nil && strings.Contains(err.Error(), "could not be recorded") {
						l.unrecorded.Add(1)
					}
				}
			}
		}()
	}
	return l
}

// note records an answer: the first, or a check against it.
func (l *faultLoad) note(id string, o faultOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.first[id]; ok {
		if f != o {
			l.contradicted = append(l.contradicted, fmt.Sprintf("%s: first %s, then %s", id, f, o))
		}
		return
	}
	l.first[id] = o
	l.answered.Add(1)
}

func (l *faultLoad) wait(t *testing.T, n int64, what string) {
	t.Helper()
	waitMore(t, &l.answered, n, what)
}

// finish stops the load, retries every command it sent (answered or not) until it has a definite
// answer, and checks what the ledger's promise says: every answer the first, every accepted
// command in LEDGER once and no rejected one, and each account's allocation the same in the
// stream, the projection and the writer.
func (l *faultLoad) finish(t *testing.T, nc *nats.Conn, accounts []string) {
	t.Helper()
	l.halt()
	cl := client(t, nc)
	ids := make([]string, 0, len(l.cmds))
	for id := range l.cmds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	undecided := 0
	for _, id := range ids {
		if _, ok := l.first[id]; !ok {
			undecided++
		}
		for round := 0; round < 2; round++ { // the second makes an undecided command's answer stick
			var o faultOutcome
			ok := false
			for attempt := 0; attempt < 20 && !ok; attempt++ {
				a, err := l.cmds[id].send(ctxT(t), cl)
				o, ok = outcomeOf(a, err)
				if !ok {
					t.Logf("%s: %v", id, err)
				}
			}
			require.True(t, ok, "%s never got a definite answer", id)
			l.note(id, o)
		}
	}
	assert.Empty(t, l.contradicted, "every retry gets the first answer")

	perCommand := map[string]int{}
	var allocated = map[string]int64{}
	for _, e := range readAll(t, nc) {
		c, ok := l.cmds[e.CommandID]
		if !ok {
			continue // set-up
		}
		perCommand[e.CommandID]++
		if c.release {
			allocated[c.account] -= c.amount
		} else {
			allocated[c.account] += c.amount
		}
	}
	accepted, rejected := 0, 0
	for _, id := range ids {
		o := l.first[id]
		if o.code == "" {
			accepted++
			assert.Equal(t, 1, perCommand[id], "accepted command %s is in LEDGER once", id)
		} else {
			rejected++
			assert.Equal(t, 0, perCommand[id], "rejected command %s (%s) is not in LEDGER", id, o.code)
		}
	}
	t.Logf("%d commands: %d accepted, %d rejected, %d unanswered until the end; %d unavailable answers or timeouts",
		len(ids), accepted, rejected, undecided, l.unavailable.Load())

	head := streamHead(t, nc)
	waited := time.Now()
	for _, acct := range accounts {
		var raw json.RawMessage
		var err error
		for time.Since(waited) < 90*time.Second {
			if raw, err = cl.Query(ctxT(t), "balance", map[string]any{"account_id": acct, "min_position": head}); err == nil {
				break
			}
		}
		require.NoError(t, err)
		if d := time.Since(waited); d > time.Second && acct == accounts[0] {
			t.Logf("the projection reached %d only %s after the load ended", head, d.Round(time.Millisecond))
		}
		var b struct {
			Allocated decimal.Decimal `json:"allocated_credits"`
		}
		require.NoError(t, json.Unmarshal(raw, &b))
		assert.True(t, decimal.NewFromInt(allocated[acct]).Equal(b.Allocated), "%s: stream %d, projection %s", acct, allocated[acct], b.Allocated)
		_, err = cl.ReleaseCredits(ctxT(t), commands.ReleaseCredits{Meta: commands.Meta{CommandID: acct + "-probe-" + fmt.Sprint(head), AccountID: acct},
			Feature: "container_security", Credits: commands.MustAmount("1000000")})
		var le *ledger.Error
		if assert.ErrorAs(t, err, &le) && assert.Equal(t, ledger.CodeInsufficientAllocation, le.Code, "%v", err) {
			assert.Equal(t, fmt.Sprint(allocated[acct]), fmt.Sprint(le.Data["allocated"]), "%s: the writer's allocation", acct)
		}
	}
}

// smallAccounts funds n accounts with 10 credits each (a few allocations use them up).
func smallAccounts(t *testing.T, cl *commands.Client, prefix string, n int) []string {
	t.Helper()
	return fundAccounts(t, cl, prefix, n, "10")
}

// faultNode starts the soaks' single node on url (ns's, or a proxy's to it) with its appends
// and rejection writes behind the gates and a snapshot every 40 events, and a client connection
// straight to ns that reconnects at once.
func faultNode(t *testing.T, ns *restartableNATS, url string, appends, rejs *gate) (server.Config, *server.Server, *nats.Conn) {
	t.Helper()
	cfg := sharedNode(t, url, "a", &server.Hooks{BeforeAppend: appends.pass, BeforeRejections: rejs.pass})
	cfg.SnapshotEvery = 40
	n := start(t, cfg)
	require.Eventually(t, func() bool { return len(n.Partitions()) == n.PartitionCount() }, waitFor, pollTick)
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	waitServing(t, nc)
	return cfg, n, nc
}

// single node on a nats-server that is stopped mid-load and started again on the same store.
func TestStoreFaultNATSRestartMidLoad(t *testing.T) {
	storeFaultSoak(t)
	for _, tc := range []struct {
		name          string
		snapshotEvery uint64
		restartLedger bool
	}{
		{name: "ledger_runs_on"},
		{name: "ledger_runs_on_snapshots", snapshotEvery: 40},
		{name: "ledger_killed_and_restarted", snapshotEvery: 40, restartLedger: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newRestartableNATS(t)
			cfg := sharedNode(t, ns.url(), "a", nil)
			cfg.SnapshotEvery = tc.snapshotEvery
			n := start(t, cfg)
			require.Eventually(t, func() bool { return len(n.Partitions()) == n.PartitionCount() }, waitFor, pollTick)
			nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			waitServing(t, nc)
			accounts := smallAccounts(t, client(t, nc), "rs", 6)
			l := startFaultLoad(t, ns.url(), accounts, 8, time.Second)
			l.wait(t, 200, "load before the stop")
			for _, down := range []int64{0, 8, 40} { // unavailable answers or timeouts while it is down
				ns.stop()
				target := l.unavailable.Load() + down
				require.Eventually(t, func() bool { return l.unavailable.Load() >= target }, 60*time.Second, pollTick)
				if tc.restartLedger {
					n.Kill()
				}
				ns.start(t)
				if tc.restartLedger {
					n = start(t, cfg)
				}
				l.wait(t, 200, "load after the restart")
			}
			l.finish(t, nc, accounts)
			n.Shutdown(context.Background())
			var left []string
			deadline := time.Now().Add(10 * time.Second)
			for left = ledgerGoroutines(); len(left) > 0 && time.Now().Before(deadline); left = ledgerGoroutines() {
				time.Sleep(50 * time.Millisecond)
			}
			assert.Empty(t, left, "ledger goroutines left after its shutdown")
		})
	}
}

// The nats-server stopped while the writer's append and its write of rejections wait at a gate:
// both go out while the connection is down (nats.go buffers them until it reconnects), and
// their answers may or may not come back within the append timeout.
func TestStoreFaultNATSRestartUnderAppends(t *testing.T) {
	storeFaultSoak(t)
	for _, tc := range []struct {
		name          string
		openWhileDown bool
		restartLedger bool
	}{
		{name: "sent_while_down", openWhileDown: true},
		{name: "sent_after_restart"},
		{name: "sent_while_down_ledger_killed", openWhileDown: true, restartLedger: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newRestartableNATS(t)
			appends, rejs := &gate{}, &gate{}
			cfg, n, nc := faultNode(t, ns, ns.url(), appends, rejs)
			accounts := smallAccounts(t, client(t, nc), "ra", 6)
			l := startFaultLoad(t, ns.url(), accounts, 8, time.Second)
			l.wait(t, 100, "load before the stop")
			for i := 0; i < 4; i++ {
				g := appends // one append in flight at a time: its round's rejections, or the next round's, wait
				if i%2 == 1 {
					g = rejs
				}
				g.close(t)
				require.Eventually(t, func() bool { return g.waiting.Load() > 0 }, waitFor, pollTick)
				ns.stop()
				if tc.openWhileDown {
					appends.open()
					rejs.open()
				}
				target := l.unavailable.Load() + 8
				require.Eventually(t, func() bool { return l.unavailable.Load() >= target }, 60*time.Second, pollTick)
				if tc.restartLedger {
					appends.open()
					rejs.open()
					n.Kill()
				}
				ns.start(t)
				appends.open()
				rejs.open()
				if tc.restartLedger {
					n = start(t, cfg)
				}
				l.wait(t, 100, "load after the restart")
			}
			l.finish(t, nc, accounts)
		})
	}
}

// faultProxy forwards TCP connections to a nats-server. Cut closes them and refuses new ones
// until Reopen; Hold stops forwarding in one or both directions (the bytes wait in the proxy, as
// on a stalled network path) until Release, which forwards them, or Cut, which drops them.
type faultProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	conns  []net.Conn
	cut    bool
	holdUp bool // client to server
	holdDn bool // server to client
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	t.Cleanup(func() { p.Cut(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if cut {
				c.Close()
				continue
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go p.pipe(d, c, true)
			go p.pipe(c, d, false)
		}
	}()
	return p
}

func (p *faultProxy) pipe(dst, src net.Conn, up bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for !p.cut && ((up && p.holdUp) || (!up && p.holdDn)) {
				p.cond.Wait()
			}
			cut := p.cut
			p.mu.Unlock()
			if cut {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *faultProxy) url() string { return "nats://" + p.ln.Addr().String() }

// Cut closes every proxied connection (dropping what is held) and refuses new ones.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.cond.Broadcast()
}

// Reopen accepts connections again.
func (p *faultProxy) Reopen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.holdUp, p.holdDn = false, false, false
}

// Hold stops forwarding in the directions given.
func (p *faultProxy) Hold(up, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdUp, p.holdDn = up, down
}

// Release forwards what is held and goes on forwarding.
func (p *faultProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdUp, p.holdDn = false, false
	p.cond.Broadcast()
}

// The connection between the ledger and its nats-server cut (or stalled) while the writer's
// append or rejection write waits at a gate: it goes out into the fault.
func TestStoreFaultConnectionCutUnderAppends(t *testing.T) {
	storeFaultSoak(t)
	type fault struct {
		name     string
		up, down bool // held directions
		release  bool // held bytes forwarded (else dropped by a cut)
	}
	for _, f := range []fault{
		{name: "cut"},
		{name: "stalled_then_forwarded", up: true, down: true, release: true},
		{name: "stalled_then_dropped", up: true, down: true},
		{name: "acks_stalled_then_forwarded", down: true, release: true},
		{name: "acks_stalled_then_dropped", down: true},
	} {
		t.Run(f.name, func(t *testing.T) {
			ns := newRestartableNATS(t)
			proxy := newFaultProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.opts.Port))
			appends, rejs := &gate{}, &gate{}
			_, n, nc := faultNode(t, ns, proxy.url(), appends, rejs)
			accounts := smallAccounts(t, client(t, nc), "rc", 6)
			l := startFaultLoad(t, ns.url(), accounts, 8, 8*time.Second)
			l.wait(t, 100, "load before the fault")
			for i := 0; i < 4; i++ {
				g := appends
				if i%2 == 1 {
					g = rejs
				}
				g.close(t)
				require.Eventually(t, func() bool { return g.waiting.Load() > 0 }, waitFor, pollTick)
				if f.up || f.down {
					proxy.Hold(f.up, f.down)
				} else {
					proxy.Cut()
				}
				failed := n.WriterStats().FailedAppends
				g.open()
				if g == appends { // until the append has timed out (uncertain), or its rejections' write
					require.Eventually(t, func() bool { return n.WriterStats().FailedAppends > failed }, 30*time.Second, pollTick)
				} else { // the write's three sends have timed out: the fault outlasts the ledger's own timer
					opened := time.Now()
					require.Eventually(t, func() bool { return time.Since(opened) > 3*jetstore.DefaultAppendTimeout+time.Second }, 30*time.Second, pollTick)
				}
				if f.release {
					proxy.Release()
				} else {
					proxy.Cut()
					proxy.Reopen()
				}
				l.wait(t, 100, "load after the fault")
			}
			l.finish(t, nc, accounts)
		})
	}
}

// The rejection log refusing writes while LEDGER works (capped at its message count: the server
// answers "maximum messages exceeded"): a business rejection is answered unavailable, saying
// why, and forgotten; an appended command is accepted; a rejection answered before is still
// replayed; and once the log takes writes again, a retry is decided and its answer sticks. Then
// the log is deleted: rejections are answered unavailable until a restart, which refuses to
// start (jetstore.ErrRejectionsLost) rather than create it again, empty, until the operator
// accepts the loss; a retry of a rejection the lost log held is then decided afresh.
func TestRejectionLogRefusingWrites(t *testing.T) {
	t.Parallel()
	ns := newRestartableNATS(t)
	cfg := sharedNode(t, ns.url(), "a", nil)
	n := start(t, cfg)
	require.Eventually(t, func() bool { return len(n.Partitions()) == n.PartitionCount() }, waitFor, pollTick)
	nc := connectTo(t, ns.url())
	cl := client(t, nc)
	acct := smallAccounts(t, cl, "rl", 1)[0] // 10 credits
	over := func(id string) commands.AllocateCredits { return allocate(id, acct, "20") }
	_, err := cl.AllocateCredits(ctxT(t), over("c1"))
	require.Equal(t, ledger.CodeInsufficientCredits, code(err), "%v", err)

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), jetstore.RejectionStream)
	require.NoError(t, err)
	info, err := st.Info(ctxT(t))
	require.NoError(t, err)
	capped := info.Config
	capped.MaxMsgs, capped.Discard = int64(info.State.Msgs), jetstream.DiscardNew
	_, err = js.UpdateStream(ctxT(t), capped)
	require.NoError(t, err)

	_, err = cl.AllocateCredits(ctxT(t), over("c2"))
	require.Equal(t, ledger.CodeUnavailable, code(err), "%v", err)
	assert.Contains(t, err.Error(), "maximum messages exceeded", "the answer says why")
	_, err = cl.AllocateCredits(ctxT(t), allocate("ok1", acct, "1"))
	require.NoError(t, err, "LEDGER still takes appends")
	_, err = cl.AllocateCredits(ctxT(t), over("c1"))
	assert.Equal(t, ledger.CodeInsufficientCredits, code(err), "an answered rejection is replayed: %v", err)

	capped.MaxMsgs, capped.Discard = -1, info.Config.Discard
	_, err = js.UpdateStream(ctxT(t), capped)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		_, err = cl.AllocateCredits(ctxT(t), over("c2"))
		assert.Equal(t, ledger.CodeInsufficientCredits, code(err), "retry %d after the log recovered: %v", i, err)
	}

	require.NoError(t, js.DeleteStream(ctxT(t), jetstore.RejectionStream))
	_, err = cl.AllocateCredits(ctxT(t), over("c3"))
	require.Equal(t, ledger.CodeUnavailable, code(err), "%v", err)
	_, err = cl.AllocateCredits(ctxT(t), over("c1"))
	assert.Equal(t, ledger.CodeInsufficientCredits, code(err), "replayed from memory: %v", err)

	n.Shutdown(context.Background())
	_, err = server.Start(ctxT(t), cfg)
	require.ErrorIs(t, err, jetstore.ErrRejectionsLost, "a start does not create the lost log again, empty")
	_, err = js.Stream(ctxT(t), jetstore.RejectionStream)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)

	// The operator accepts the loss (`creditledger rejections accept-loss`); the retry of a
	// rejection the deleted log held is then decided afresh, here accepted.
	store, err := jetstore.Open(ctxT(t), nc, jetstore.Config{})
	require.NoError(t, err)
	lost, err := jetstore.AcceptLostRejections(ctxT(t), store)
	require.NoError(t, err)
	require.True(t, lost)
	start(t, cfg)
	waitServing(t, nc)
	_, err = cl.PurchaseLicense(ctxT(t), purchase("more", acct, acct+"-L2", "100"))
	require.NoError(t, err)
	_, err = cl.ActivateLicense(ctxT(t), activate("more-a", acct, acct+"-L2"))
	require.NoError(t, err)
	_, err = cl.AllocateCredits(ctxT(t), over("c1"))
	assert.NoError(t, err, "after the operator accepted the loss, a rejection the deleted log held is decided afresh")
}

// ledgerGoroutines lists the stacks of live goroutines running ledger code (not this package's).
func ledgerGoroutines() []string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "creditledger/creditledger/") && !strings.Contains(g, "productiontest") {
			out = append(out, g)
		}
	}
	return out
}
