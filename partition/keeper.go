package partition

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Errors a Leases store reports.
var (
	// ErrHeld means another node holds the lease.
	ErrHeld = errors.New("lease held by another node")
	// ErrLost means the lease moved on since this node last wrote it (it expired and was taken,
	// or was released): the node no longer owns the partition.
	ErrLost = errors.New("lease lost")
)

// Leases is the lease table every node shares (jetstore.Leases on a JetStream key-value
// bucket). Every write is checked by the store: Acquire creates only, Renew and Release need
// the revision the caller holds, and a lease not renewed within TTL expires by itself.
type Leases interface {
	// TTL is how long a lease (and a node's heartbeat) lives without a renewal.
	TTL() time.Duration
	// Heartbeat says node is alive (for TTL).
	Heartbeat(ctx context.Context, node string) error
	// Leave removes node's heartbeat (a graceful stop: the others reassign at once).
	Leave(ctx context.Context, node string) error
	// Nodes lists the nodes whose heartbeat has not expired.
	Nodes(ctx context.Context) ([]string, error)
	// Acquire takes partition p's lease for node if nobody holds it (ErrHeld otherwise).
	Acquire(ctx context.Context, p int, node string) (revision uint64, err error)
	// Holder reads partition p's lease as the store's leader has it: the node it names and its
	// revision ("" and 0 when nobody holds it).
	Holder(ctx context.Context, p int) (node string, revision uint64, err error)
	// Seize takes partition p's lease for node if it is still at revision, with a write checked
	// against it (ErrHeld otherwise): the keeper seizes the lease of a member proven down that
	// has not renewed it for a while (seize.go).
	Seize(ctx context.Context, p int, node string, revision uint64) (uint64, error)
	// Renew extends the lease held at revision (ErrLost when it moved).
	Renew(ctx context.Context, p int, node string, revision uint64) (uint64, error)
	// Release gives the lease up, if it is still node's.
	Release(ctx context.Context, p int, node string, revision uint64) error
}

// Config configures a Keeper. Node, Partitions and Leases are required.
type Config struct {
	Node       string
	Partitions int
	Leases     Leases
	// Tick is how often leases are renewed and the assignment re-read (default TTL/5).
	Tick time.Duration
	// Now is a monotonic clock (time.Now when nil); lease validity is measured on it.
	Now func() time.Time
	// Fence runs after a lease is acquired and before the partition counts as held: it makes
	// the previous owner's later writes fail (jetstore.RejectionLog.Fence). An error gives the
	// lease back.
	Fence func(ctx context.Context, p int) error
	// Drain runs before a lease is given up, after the partition stopped counting as owned; it
	// returns once nothing is in flight for p.
	Drain func(ctx context.Context, p int) error
	// Changed is called (from the keeper's goroutine) after the set of held partitions changed.
	Changed func()
	// Probe, when set, asks whether a node is alive over a path that does not go through the
	// lease store (server: a request on NATS core, which answers while the lease bucket elects
	// a leader). While a while after a lease-store gap runs, it ends the while once every node
	// that was a member before the gap is a member again or proven down (comeback.go); at every
	// other step it finds members proven down whose heartbeats have not lapsed yet (a node killed
	// a moment ago), whose partitions are then taken without waiting for their leases to lapse
	// (liveness.go, gone; seize.go). An error counts as NodeUnknown. Nil: neither.
	Probe func(ctx context.Context, node string) (Liveness, error)
	Log   zerolog.Logger
}

// lease is one held lease: its revision and how long this node may still write under it.
type lease struct {
	rev        uint64
	validUntil time.Time
	releasing  bool
	// dropped is set by Drop: the partition was fenced by another writer; the next step gives
	// the lease back (if it is still this node's) and forgets it.
	dropped bool
	// acquired is the revision the lease was acquired at: it names this tenure (a partition
	// given up and taken again gets a new one, and its state must be loaded again unless its
	// fence shows nobody else took it meanwhile: server/partitions.go).
	acquired uint64
	// unreachable is set while the last renewal failed without an answer from the store (an
	// error that is neither ErrLost nor ErrHeld: the lease bucket is electing a leader, say).
	unreachable bool
	// from is when a seized lease starts counting as owned (zero: at once): its previous holder,
	// proven down, may be alive but cut off and still answering from memory until its own lease
	// clock runs out (seize.go).
	from time.Time
}

// Keeper holds this node's share of the partition leases: it renews them, acquires the ones
// Assign gives this node when they are free, and hands over the ones Assign gives a live
// other node. Owns says, at any moment, whether this node may write a partition.
type Keeper struct {
	cfg  Config
	ttl  time.Duration
	mu   sync.Mutex
	held map[int]*lease
	// comeback is owned by the goroutine that steps (Run, or the caller of Step).
	comeback comeback
	// gone are the members the last steady-state probe round proved down (liveness.go); owned
	// by the goroutine that steps.
	gone map[string]bool
	// idle are the lease revisions of members proven down as this node first read them, per
	// partition (seize.go); owned by the goroutine that steps.
	idle map[int]idleLease
}

// NewKeeper checks the config.
func NewKeeper(cfg Config) (*Keeper, error) {
	if cfg.Node == "" || cfg.Partitions <= 0 || cfg.Leases == nil {
		return nil, errors.New("partition: Node, Partitions and Leases are required")
	}
	ttl := cfg.Leases.TTL()
	if ttl <= 0 {
		return nil, errors.New("partition: the lease store has no TTL")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = ttl / 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keeper{cfg: cfg, ttl: ttl, held: map[int]*lease{}, idle: map[int]idleLease{}}, nil
}

// margin is how long before its expiry a lease stops counting as owned: the clocks of this node
// and the server may drift, and an append already sent may take this long to land.
func (k *Keeper) margin() time.Duration { return k.ttl / 4 }

// Owns reports whether this node may decide for partition p now, any answer included, and
// since which tenure: it holds the lease, is not handing it over, and the lease has not come
// near its expiry since it was last renewed (the lease clock). OwnsFenced is the weaker answer
// for appends alone.
func (k *Keeper) Owns(p int) (tenure uint64, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.held[p]
	now := k.cfg.Now()
	if l == nil || l.releasing || l.dropped || !now.Before(l.validUntil) || now.Before(l.from) {
		return 0, false
	}
	return l.acquired, true
}

// OwnsFenced reports whether this node may still append to partition p under its fence, and in
// which tenure: Owns, or it holds the lease (not handing it over) and its last renewal got no
// answer from the store, however long ago. The lease clock no longer vouches for the partition
// then, but no other node can append to it without first acquiring the lease and writing a
// newer ownership record, which makes the server refuse this node's appends (the partition
// fence, docs/OPERATIONS.md). So only answers that a write carries may be given on it (an
// append, a stored rejection under its fence read), not an answer from memory alone
// (writer.FencedOwner).
func (k *Keeper) OwnsFenced(p int) (tenure uint64, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.held[p]
	if l == nil || l.releasing || l.dropped || k.cfg.Now().Before(l.from) {
		return 0, false
	}
	if !l.unreachable && !k.cfg.Now().Before(l.validUntil) {
		return 0, false
	}
	return l.acquired, true
}

// Tenure is the tenure of partition p's lease while this node holds it, near its expiry or
// handing it over included (Owns says whether it may decide for it now; a writer snapshots a
// partition it drains only if it loaded it in this tenure). A dropped lease has none.
func (k *Keeper) Tenure(p int) (uint64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.held[p]
	if l == nil || l.dropped {
		return 0, false
	}
	return l.acquired, true
}

// Held maps the partitions this node holds and is not handing over to their tenure.
func (k *Keeper) Held() map[int]uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[int]uint64, len(k.held))
	for p, l := range k.held {
		if !l.releasing && !l.dropped {
			out[p] = l.acquired
		}
	}
	return out
}

// Drop stops owning partition p at once if this node still holds it in tenure: another writer
// has fenced the partition (a node took the lease while this one was stalled). The next step
// gives the lease back, which succeeds only if it is still this node's (the fence then came from
// a writer without the lease, and this node may take the partition again, in a new tenure, and
// fence it anew). It reports whether the held set changed.
func (k *Keeper) Drop(p int, tenure uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.held[p]
	if l == nil || l.dropped || l.acquired != tenure {
		return false
	}
	l.dropped = true
	k.cfg.Log.Warn().Int("partition", p).Uint64("tenure", tenure).Msg("partition fenced by another writer; no longer writing it")
	return true
}

// all lists every held partition, handing over included, in order.
func (k *Keeper) all() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]int, 0, len(k.held))
	for p := range k.held {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// Run steps every Tick until ctx ends, then gives every lease back (a graceful stop hands the
// partitions over at once instead of after TTL).
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.cfg.Tick)
	defer t.Stop()
	for {
		// A step is not cut short when ctx ends (a write whose answer is lost leaves a lease a
		// revision ahead); it is bounded by the TTL instead.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.ttl)
		if err := k.Step(sctx); err != nil && ctx.Err() == nil {
			k.cfg.Log.Warn().Err(err).Msg("partition leases")
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReleaseAll leaves the member list, then drains and gives back every held lease (graceful
// stop): the other nodes take the partitions on their next step instead of after the TTL.
func (k *Keeper) ReleaseAll(ctx context.Context) {
	if err := k.cfg.Leases.Leave(ctx, k.cfg.Node); err != nil {
		k.cfg.Log.Warn().Err(err).Msg("leaving the partition members")
	}
	ps := k.all()
	k.mu.Lock()
	for _, p := range ps {
		k.held[p].releasing = true
	}
	k.mu.Unlock()
	if len(ps) > 0 && k.cfg.Drain != nil {
		if err := k.cfg.Drain(ctx, ps[0]); err != nil { // one barrier covers every partition
			k.cfg.Log.Warn().Err(err).Msg("not drained; letting the leases expire")
			return
		}
	}
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxRenewing)
	)
	for _, p := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			k.mu.Lock()
			l := k.held[p]
			delete(k.held, p)
			k.mu.Unlock()
			if l != nil {
				if err := k.cfg.Leases.Release(ctx, p, k.cfg.Node, l.rev); err != nil {
					k.cfg.Log.Warn().Err(err).Int("partition", p).Msg("giving a lease back; it expires by itself")
				}
			}
		}()
	}
	wg.Wait()
}

// Step is one round: heartbeat, renew, then acquire or hand over towards Assign's answer.
func (k *Keeper) Step(ctx context.Context) error {
	// Renewals are tried even when the heartbeat fails: they are separate writes.
	sent := k.cfg.Now()
	beat := k.cfg.Leases.Heartbeat(ctx, k.cfg.Node)
	k.beat(sent, beat) // before renew: what this node held before a gap is still in k.held
	// The member list is read as the heartbeat found the store, before the renewals: when the
	// store goes away between the two, the renewals wait out the step's bound (the TTL), and a
	// list read after them has forgotten every node whose heartbeats could not land meanwhile.
	// Recorded as the members from before the gap (stepped), it ended the while after the gap at
	// once, and this node took every other node's lapsed partitions, to hand them back when they
	// showed again (TestComebackAfterAStepTheStoreLeftMidway).
	var (
		nodes    []string
		nodesErr error
	)
	if beat == nil {
		nodes, nodesErr = k.cfg.Leases.Nodes(ctx)
	}
	changed := k.renew(ctx)
	if beat != nil {
		k.notify(changed)
		return fmt.Errorf("heartbeat: %w", beat)
	}
	if nodesErr != nil {
		k.notify(changed)
		return fmt.Errorf("list nodes: %w", nodesErr)
	}
	if !contains(nodes, k.cfg.Node) {
		nodes = append(nodes, k.cfg.Node) // our own heartbeat may not be visible yet
	}
	k.comeback.seen(nodes)
	k.probe(ctx, nodes)     // only while a while after a gap runs
	k.probeGone(ctx, nodes) // only while none runs
	want := Assign(k.cfg.Partitions, without(k.comeback.assignees(nodes, k.cfg.Now()), k.gone))
	for p, owner := range want {
		held := k.holds(p)
		switch {
		case owner == k.cfg.Node && !held:
			if k.comeback.waits(p, k.cfg.Now()) {
				continue // another node's before the gap: it takes it back first
			}
			changed = k.acquire(ctx, p) || changed
		case owner != k.cfg.Node && held:
			k.release(ctx, p) // the new owner takes it on its next step
			changed = true
		}
	}
	k.stepped(nodes)
	k.notify(changed)
	return nil
}

func (k *Keeper) notify(changed bool) {
	if changed && k.cfg.Changed != nil {
		k.cfg.Changed()
	}
}

func (k *Keeper) holds(p int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held[p] != nil
}

// maxRenewing bounds the renewals in flight at once (each is one round trip to the store).
const maxRenewing = 16

// renew extends every held lease, several at once; a lease found moved on is dropped at once.
// It reports whether the held set changed.
func (k *Keeper) renew(ctx context.Context) bool {
	var (
		changed atomic.Bool
		wg      sync.WaitGroup
		sem     = make(chan struct{}, maxRenewing)
	)
	for _, p := range k.all() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if k.renewOne(ctx, p) {
				changed.Store(true)
			}
		}()
	}
	wg.Wait()
	return changed.Load()
}

// renewOne renews one lease; it reports whether the lease was found lost.
func (k *Keeper) renewOne(ctx context.Context, p int) bool {
	k.mu.Lock()
	l := k.held[p]
	var (
		rev     uint64
		dropped bool
	)
	if l != nil {
		rev, dropped = l.rev, l.dropped
	}
	k.mu.Unlock()
	if l == nil {
		return false
	}
	if dropped {
		// Revision-checked: a lease another node holds now is left alone.
		if err := k.cfg.Leases.Release(ctx, p, k.cfg.Node, rev); err != nil {
			k.cfg.Log.Debug().Err(err).Int("partition", p).Msg("giving a fenced partition's lease back")
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.held[p] == l {
			delete(k.held, p)
		}
		return true
	}
	sent := k.cfg.Now()
	next, err := k.cfg.Leases.Renew(ctx, p, k.cfg.Node, rev)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held[p] != l {
		return false // released meanwhile
	}
	l.unreachable = err != nil && !errors.Is(err, ErrLost) && !errors.Is(err, ErrHeld)
	switch {
	case err == nil:
		l.rev, l.validUntil = next, sent.Add(k.ttl-k.margin())
	case errors.Is(err, ErrLost):
		delete(k.held, p)
		k.cfg.Log.Warn().Int("partition", p).Msg("partition lease lost; no longer writing it")
		return true
	}
	if err != nil {
		// Not renewed; it stays valid until validUntil, and the next step tries again.
		k.cfg.Log.Debug().Err(err).Int("partition", p).Msg("lease not renewed")
	}
	return false
}

// acquire takes a free lease, or one held by a member proven down (seize), and fences the
// previous owner; it reports success.
func (k *Keeper) acquire(ctx context.Context, p int) bool {
	sent := k.cfg.Now()
	rev, err := k.cfg.Leases.Acquire(ctx, p, k.cfg.Node)
	var from time.Time
	if errors.Is(err, ErrHeld) {
		rev, from, err = k.seize(ctx, p)
	}
	if err != nil {
		return false // held: its owner hands it over, or it expires
	}
	if k.cfg.Fence != nil {
		if err := k.cfg.Fence(ctx, p); err != nil {
			k.cfg.Log.Warn().Err(err).Int("partition", p).Msg("fencing the previous owner failed; giving the lease back")
			_ = k.cfg.Leases.Release(ctx, p, k.cfg.Node, rev)
			return false
		}
	}
	k.mu.Lock()
	k.held[p] = &lease{rev: rev, acquired: rev, validUntil: sent.Add(k.ttl - k.margin()), from: from}
	k.mu.Unlock()
	return true
}

// release stops owning p, waits until nothing is in flight for it, and gives the lease back.
func (k *Keeper) release(ctx context.Context, p int) {
	k.mu.Lock()
	l := k.held[p]
	if l != nil {
		l.releasing = true
	}
	k.mu.Unlock()
	if l == nil {
		return
	}
	if k.cfg.Drain != nil {
		if err := k.cfg.Drain(ctx, p); err != nil {
			// Not drained: keep the lease (not owned) and let it expire rather than hand over a
			// partition with an append in flight.
			k.cfg.Log.Warn().Err(err).Int("partition", p).Msg("partition not drained; letting its lease expire")
			k.mu.Lock()
			delete(k.held, p)
			k.mu.Unlock()
			return
		}
	}
	_ = k.cfg.Leases.Release(ctx, p, k.cfg.Node, l.rev)
	k.mu.Lock()
	delete(k.held, p)
	k.mu.Unlock()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
