package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/partition"
	"github.com/creditledger/creditledger/writer"
)

// PartitionConfig configures how this node shares the partitions with the others.
type PartitionConfig struct {
	// Count is the partition count of a store this node creates (ledger.DefaultPartitions when
	// 0); an existing store keeps the count it recorded.
	Count int
	// LeaseTTL is the lease TTL of a lease bucket this node creates (jetstore.DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Tick is how often leases are renewed and the assignment re-read (LeaseTTL/5 when 0).
	Tick time.Duration
}

// releaseTimeout bounds the hand-over of every partition at a graceful stop.
const releaseTimeout = 5 * time.Second

// node is this process's share of the cluster: the partitions it holds (a partition.Keeper)
// and the writer that decides their accounts. The writer is replaced by a freshly loaded one
// (a generation) whenever the node gains a partition; one it loses is only switched off.
type node struct {
	log    zerolog.Logger
	keeper *partition.Keeper
	n      int
	// newWriter builds a writer that holds the accounts holds accepts, those of the partitions
	// held (nil: all).
	newWriter func(holds func(string) bool, owner fencedOwner, held []int) (*writer.Writer, error)
	// fences stores the partitions' ownership records (fences.go); owner names this node in them.
	fences fenceStore
	owner  string
	clock  writer.Clock
	// serve subscribes to the internal subject of a partition this node owns.
	serve func(p int) (*nats.Subscription, error)
	tick  time.Duration
	// alive answers the other nodes' liveness probes (alive.go) until the node has handed its
	// partitions over.
	alive *nats.Subscription

	mu      sync.RWMutex
	gen     *generation
	retired writer.Stats
	subs    map[int]*nats.Subscription
	changed chan struct{}
	stopped chan struct{}
	// stopping is set when a graceful stop hands every partition over (partsnaps.go).
	stopping atomic.Bool
	// stats count how the node's partitions changed hands (PartitionStats).
	loads, fenced, kept atomic.Uint64
}

// PartitionStats count how a node's partitions changed hands since it started: what a takeover
// cost, and what a lapse of the leases did not.
type PartitionStats struct {
	// Loads counts the writers loaded (generations: the first at start, then one each time the
	// node gains a partition it must load).
	Loads uint64 `json:"writer_loads"`
	// Fenced counts the ownership records written (one per partition per takeover).
	Fenced uint64 `json:"partitions_fenced"`
	// Kept counts the partitions re-acquired in a new lease tenure whose fence was still this
	// node's: kept by the running writer, with no ownership record and no load.
	Kept uint64 `json:"partitions_kept"`
}

// PartitionStats are the node's running totals.
func (n *node) PartitionStats() PartitionStats {
	return PartitionStats{Loads: n.loads.Load(), Fenced: n.fenced.Load(), Kept: n.kept.Load()}
}

// fencedOwner is what a writer of this node is told of its partitions: which it owns, and the
// fence its appends carry for each.
type fencedOwner interface {
	writer.Ownership
	writer.Fences
}

// generation is one writer, the partition tenures it holds, and the ownership record
// (fences.go) it holds for each: their positions in the store.
type generation struct {
	node *node
	w    *writer.Writer
	// tenure maps each partition the writer loaded to the lease tenure it holds it in. Its keys
	// are fixed when the generation is built; a value moves only when the node re-acquires the
	// partition and its fence is still this generation's (settleTenures). The writer reads it on
	// every command (Owns), hence an atomic per partition rather than a lock.
	tenure map[int]*atomic.Uint64
	fences map[int]uint64
	cancel context.CancelFunc
	mu     sync.Mutex
	// gone holds the partitions whose fence another node moved (Lost, or read by settleTenures).
	gone map[int]bool
	// handed holds the partitions drained for a hand-over (Drain): they are not kept for a
	// re-acquire even while their fence has not moved yet.
	handed map[int]bool
	// forgotten lists the partitions lost whose accounts the writer was told to drop (partsnaps.go);
	// read and written by the reconciler only.
	forgotten map[int]bool
}

// tenures makes a generation's tenure table.
func tenures(held map[int]uint64) map[int]*atomic.Uint64 {
	out := make(map[int]*atomic.Uint64, len(held))
	for p, t := range held {
		v := new(atomic.Uint64)
		v.Store(t)
		out[p] = v
	}
	return out
}

// tenureOf is the tenure g holds partition p in (false: g did not load p).
func (g *generation) tenureOf(p int) (uint64, bool) {
	t, ok := g.tenure[p]
	if !ok {
		return 0, false
	}
	return t.Load(), true
}

// owns reports whether g may act on partition p by the keeper's answer by (Owns or OwnsFenced):
// p is loaded, in the tenure the keeper holds it in, and no other node has fenced it since.
func (g *generation) owns(p int, by func(int) (uint64, bool)) bool {
	want, loaded := g.tenureOf(p)
	if !loaded || g.lost(p) {
		return false
	}
	have, ok := by(p)
	return ok && have == want
}

// Owns is the writer's ownership check for any answer: the node holds the partition by the
// lease clock, in the tenure this writer holds, and no other node has fenced it since.
func (g *generation) Owns(accountID string) bool {
	return g.owns(ledger.PartitionOf(accountID, g.node.n), g.node.keeper.Owns)
}

// OwnsFenced is the writer's ownership check for answers a write carries (writer.FencedOwner):
// Owns, or the lease could not be renewed because the lease store did not answer while the
// partition's fence is still this writer's (partition.Keeper.OwnsFenced).
func (g *generation) OwnsFenced(accountID string) bool {
	return g.owns(ledger.PartitionOf(accountID, g.node.n), g.node.keeper.OwnsFenced)
}

// OwnsEverything reports whether this writer owns every partition now (writer.Ownership). It
// follows the lease clock, not the fence: a writer that owns everything skips the id
// reservations, which no fence covers.
func (g *generation) OwnsEverything() bool {
	if len(g.tenure) < g.node.n {
		return false
	}
	for p := range g.tenure {
		if !g.owns(p, g.node.keeper.Owns) {
			return false
		}
	}
	return true
}

// Partition is the account's partition (commands.Router).
func (n *node) Partition(accountID string) int { return ledger.PartitionOf(accountID, n.n) }

// Local reports whether this node's writer decides the account now (commands.Router): by its
// fence too, so that commands keep reaching it while the lease store cannot be reached (the
// writer passes on those it may not answer then: writer.FencedOwner).
func (n *node) Local(accountID string) bool { return n.current().OwnsFenced(accountID) }

func (n *node) current() *generation {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.gen
}

// swapWait bounds how long Submit waits for the next writer while one is being replaced (the
// old one stopped, the new one catching up with its last appends).
const swapWait = 2 * time.Second

// Submit hands a request to the current writer. A writer stopped because a newer one replaces
// it refuses requests for a moment; they go to the newer one instead.
func (n *node) Submit(r submit.Request) error {
	deadline := time.Now().Add(swapWait)
	for {
		g := n.current()
		err := g.w.Submit(r)
		if err == nil || !g.w.Retired() || time.Now().After(deadline) {
			return err
		}
		select {
		case <-n.stopped:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Head is the current writer's head (0 before the first is loaded).
func (n *node) Head() uint64 {
	if g := n.current(); g != nil && g.w != nil {
		return g.w.Head()
	}
	return 0
}

// MarkBroken hands the projector's report of a message that breaks an account's history to
// the current writer (projections.BrokenHook); a writer that does not hold the account ignores it.
// A writer that replaces this one loads the account from the store, which shows the break.
func (n *node) MarkBroken(accountID string, position uint64, reason string) {
	if g := n.current(); g != nil && g.w != nil {
		g.w.MarkBroken(accountID, position, reason)
	}
}

// Sweep asks the current writer to run the expiry processor.
func (n *node) Sweep() { n.current().w.Sweep() }

// Stats are the running totals of every writer this node ran.
func (n *node) Stats() writer.Stats {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.retired.Plus(n.gen.w.Stats())
}

// signsCheckpoints says whether this node signs the audit checkpoints now: the owner of
// partition 0, so that a cluster has one signer at a time (and one after a takeover). By the
// lease clock: a checkpoint is not an append the partition fence covers.
func (n *node) signsCheckpoints() bool {
	_, ok := n.keeper.Owns(0)
	return ok
}

// Stopped is closed when the node has stopped.
func (n *node) Stopped() <-chan struct{} { return n.stopped }

// Drain waits until the current writer has nothing in flight (partition.Config.Drain): the
// keeper has already stopped counting the partition as owned, so nothing new starts for it.
// The writer first snapshots what is handed over (handingOver), so the next owner's replay is
// short.
func (n *node) Drain(ctx context.Context, p int) error {
	g := n.current()
	g.handOver(p, n.stopping.Load())
	return g.w.HandOver(ctx, n.handingOver(g, p))
}

// notify is partition.Config.Changed.
func (n *node) notify() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// load takes this node's first share of the partitions and loads the first writer (not run).
func (n *node) load(ctx context.Context) error {
	if err := n.keeper.Step(ctx); err != nil {
		return fmt.Errorf("partition leases: %w", err)
	}
	held := n.keeper.Held()
	g, err := n.generation(ctx, nil, held)
	if err != nil {
		return err
	}
	n.gen = g
	n.log.Info().Int("partitions", len(held)).Int("of", n.n).Msg("partitions held at start")
	return nil
}

// generation fences the partitions it takes over (fences.go) and builds and loads a writer for
// the given tenures; the load ends past every fence it wrote, so it holds whatever the previous
// owners appended before it. At start (no prev) it fences, then loads from the leader. A running
// node's takeover loads beside its fence (loadBesideFence), since the fence waits for the stream's
// leader: for an election, when the leader died with the node whose partitions these are.
func (n *node) generation(ctx context.Context, prev *generation, tenure map[int]uint64) (*generation, error) {
	g := &generation{node: n, tenure: tenures(tenure)}
	var holds func(string) bool
	var held []int
	if len(tenure) < n.n {
		holds = func(id string) bool { _, ok := tenure[ledger.PartitionOf(id, n.n)]; return ok }
		held = make([]int, 0, len(tenure))
		for p := range tenure {
			held = append(held, p)
		}
	}
	newWriter := func() (*writer.Writer, error) { return n.newWriter(holds, g, held) }
	var w *writer.Writer
	if prev != nil {
		var err error
		if w, err = n.loadBesideFence(ctx, g, prev, tenure, newWriter); err != nil {
			return nil, err
		}
	}
	if g.fences == nil {
		fences, err := n.fence(ctx, prev, tenure)
		if err != nil {
			return nil, err
		}
		g.fences = fences
	}
	if w == nil {
		var err error
		if w, err = newWriter(); err != nil {
			return nil, err
		}
		if err := w.Load(ctx); err != nil {
			return nil, err
		}
	}
	n.loads.Add(1)
	g.w = w
	return g, nil
}

// loadBesideFence fences g's partitions while a new writer loads them from the nearest replica
// (writer.Writer.Preload), then catches it up from the leader, past the records stored. It
// returns no writer, and no error, when the load failed but the fence was written (the replica
// is behind the writer snapshot, nobody serves direct gets): the caller loads again after it.
func (n *node) loadBesideFence(ctx context.Context, g, prev *generation, tenure map[int]uint64, newWriter func() (*writer.Writer, error)) (*writer.Writer, error) {
	w, err := newWriter()
	if err != nil {
		return nil, err
	}
	type fenced struct {
		fences map[int]uint64
		err    error
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	done := make(chan fenced, 1)
	go func() {
		f, err := n.fence(ctx, prev, tenure)
		if err != nil {
			stopLoad() // the partitions are not this node's: the load is for nothing
		}
		done <- fenced{f, err}
	}()
	loadErr := w.Preload(loadCtx)
	f := <-done
	if f.err != nil {
		return nil, f.err
	}
	g.fences = f.fences
	if loadErr == nil {
		loadErr = w.CatchUp(ctx)
	}
	if loadErr != nil {
		n.log.Warn().Err(loadErr).Msg("loading beside the fence; loading again after it")
		return nil, nil
	}
	return w, nil
}

// run runs the writer, the keeper and the reconciler until ctx ends; then it hands every
// partition over (bounded) and stops the writer.
func (n *node) run(ctx context.Context) {
	defer close(n.stopped)
	n.start(n.gen)
	n.syncSubs(n.gen)
	keeperCtx, stopKeeper := context.WithCancel(context.Background())
	keeperDone := make(chan struct{})
	go func() { defer close(keeperDone); n.keeper.Run(keeperCtx) }()
	// Reconciled on every change the keeper reports, and on a tick as well, in case a change
	// was missed (cheap when nothing changed).
	tick := time.NewTicker(n.tick)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			n.notify()
		case <-ctx.Done():
			stopKeeper()
			<-keeperDone
			rctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			n.stopping.Store(true)    // Drain hands every partition over: handingOver
			n.keeper.ReleaseAll(rctx) // the writer still runs: Drain works
			cancel()
			_ = n.alive.Unsubscribe() // gone from the members: probes find it down
			g := n.current()
			g.cancel()
			<-g.w.Stopped()
			n.syncSubs(nil)
			return
		case <-n.changed:
			if err := n.reconcile(ctx); err != nil && ctx.Err() == nil {
				n.log.Error().Err(err).Msg("taking over partitions")
				n.notify() // try again on the next change or tick
			}
		}
	}
}

func (n *node) start(g *generation) {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go g.w.Run(ctx)
}

// reconcile brings the writer in line with the leases held: a partition re-acquired whose fence
// is still the writer's is kept as it is (settleTenures); a partition lost is switched off (its
// internal subject unsubscribed); a partition gained makes a new writer, loaded beside the
// running one, which then stops, and the new one catches up with its last appends and runs.
func (n *node) reconcile(ctx context.Context) error {
	held := n.keeper.Held()
	g := n.current()
	if err := n.settleTenures(ctx, g, held); err != nil {
		n.syncSubs(g)
		return err
	}
	need := false
	for p, t := range held {
		if have, _ := g.tenureOf(p); have != t || g.lost(p) {
			need = true // gained, or fenced by another node (lost) while held in a new tenure
		}
	}
	n.syncSubs(g)
	if !need {
		n.forgetLost(g, held)
		return nil
	}
	t0 := time.Now()
	ng, err := n.generation(ctx, g, held)
	if err != nil {
		return err
	}
	g.w.Retire()
	g.cancel()
	<-g.w.Stopped()
	caughtUp := ng.w.CatchUp(ctx)
	if caughtUp != nil {
		// A stopped writer cannot run again, and this one is not up to date: it runs owning
		// nothing (every request is redirected) until the next reconcile loads a new one.
		ng.tenure, ng.fences = map[int]*atomic.Uint64{}, map[int]uint64{}
	}
	n.mu.Lock()
	n.retired = n.retired.Plus(g.w.Stats())
	n.gen = ng
	n.mu.Unlock()
	n.start(ng)
	n.syncSubs(ng)
	if caughtUp != nil {
		return fmt.Errorf("catching up the new writer: %w", caughtUp)
	}
	n.log.Info().Int("partitions", len(held)).Dur("took", time.Since(t0)).Msg("partitions taken over")
	return nil
}

// syncSubs subscribes to the internal subjects of the partitions g loaded and the node still
// holds in the same tenure, and unsubscribes the rest (nil: all). A lease that merely came near
// its expiry stays subscribed: the writer refuses to decide meanwhile (Owns), and the sender
// tries again.
func (n *node) syncSubs(g *generation) {
	held := n.keeper.Held()
	for p := 0; p < n.n; p++ {
		own := false
		if g != nil {
			t, loaded := g.tenureOf(p)
			have, ok := held[p]
			own = loaded && ok && have == t
		}
		sub, has := n.subs[p]
		switch {
		case own && !has:
			s, err := n.serve(p)
			if err != nil {
				n.log.Error().Err(err).Int("partition", p).Msg("serving a partition's internal subject")
				continue
			}
			n.subs[p] = s
		case !own && has:
			// Drained, not unsubscribed: a command another node (or this one) passed here just
			// before is still handled (answered NotOwnerHeader, so its sender tries again). An
			// Unsubscribe drops it, and its sender waits out the whole forward wait for a reply
			// that never comes, then answers unavailable, however soon the partition has an owner.
			_ = sub.Drain()
			delete(n.subs, p)
		}
	}
}

var _ writer.Ownership = (*generation)(nil)

// settled reports whether the current writer holds every partition the keeper holds, in the
// keeper's tenure, and has lost none of them.
func (n *node) settled() bool {
	g := n.current()
	for p, t := range n.keeper.Held() {
		if have, ok := g.tenureOf(p); !ok || have != t || g.lost(p) {
			return false
		}
	}
	return true
}

// ownsAll is a test helper: whether the node holds every partition.
func (n *node) ownsAll() bool { return len(n.keeper.Held()) == n.n }
