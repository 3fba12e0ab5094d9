package partition_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/partition"
)

// fakeLeases is an in-memory lease table with the server's checks (create-only, revision-checked
// writes) and expiry on an injected clock.
type fakeLeases struct {
	mu sync.Mutex
	// down makes every write fail without an answer (the bucket's stream has no leader).
	down  bool
	now   func() time.Time
	ttl   time.Duration
	rev   uint64
	keys  map[int]fakeLease
	nodes map[string]time.Time
	// beforeRenew, when set, runs before each renewal (outside the lock).
	beforeRenew func()
}

type fakeLease struct {
	node    string
	rev     uint64
	written time.Time
}

func newFake(now func() time.Time) *fakeLeases {
	return &fakeLeases{now: now, ttl: 5 * time.Second, keys: map[int]fakeLease{}, nodes: map[string]time.Time{}}
}

func (f *fakeLeases) TTL() time.Duration { return f.ttl }

func (f *fakeLeases) live(p int) (fakeLease, bool) {
	l, ok := f.keys[p]
	return l, ok && f.now().Sub(l.written) < f.ttl
}

// errNoAnswer is what a write gets while the store is down.
var errNoAnswer = errors.New("no response from stream")

func (f *fakeLeases) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeLeases) Heartbeat(_ context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errNoAnswer
	}
	f.nodes[node] = f.now()
	return nil
}

func (f *fakeLeases) Leave(_ context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nodes, node)
	return nil
}

func (f *fakeLeases) Nodes(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n, at := range f.nodes {
		if f.now().Sub(at) < f.ttl {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeLeases) Acquire(_ context.Context, p int, node string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errNoAnswer
	}
	if _, ok := f.live(p); ok {
		return 0, partition.ErrHeld
	}
	f.rev++
	f.keys[p] = fakeLease{node: node, rev: f.rev, written: f.now()}
	return f.rev, nil
}

func (f *fakeLeases) Holder(_ context.Context, p int) (string, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", 0, errNoAnswer
	}
	l, ok := f.live(p)
	if !ok {
		return "", 0, nil
	}
	return l.node, l.rev, nil
}

func (f *fakeLeases) Seize(_ context.Context, p int, node string, rev uint64) (uint64, error) {
	return f.writeAt(p, node, rev, partition.ErrHeld)
}

func (f *fakeLeases) Renew(_ context.Context, p int, node string, rev uint64) (uint64, error) {
	f.mu.Lock()
	hook := f.beforeRenew
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return f.writeAt(p, node, rev, partition.ErrLost)
}

// onRenew sets beforeRenew.
func (f *fakeLeases) onRenew(hook func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beforeRenew = hook
}

// writeAt rewrites p's live key for node if it is still at rev (the server's revision check),
// and answers moved otherwise.
func (f *fakeLeases) writeAt(p int, node string, rev uint64, moved error) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errNoAnswer
	}
	l, ok := f.live(p)
	if !ok || l.rev != rev {
		return 0, moved
	}
	f.rev++
	f.keys[p] = fakeLease{node: node, rev: f.rev, written: f.now()}
	return f.rev, nil
}

func (f *fakeLeases) Release(_ context.Context, p int, _ string, rev uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errNoAnswer
	}
	if l, ok := f.keys[p]; ok && l.rev == rev {
		delete(f.keys, p)
	}
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func keeper(t *testing.T, name string, f *fakeLeases, c *clock) *partition.Keeper {
	t.Helper()
	return probedKeeper(t, name, f, c, nil)
}

// probedKeeper is a keeper of 16 partitions on leases and c's clock, with probe as its
// Config.Probe (nil: none).
func probedKeeper(t *testing.T, name string, leases partition.Leases, c *clock, probe func(context.Context, string) (partition.Liveness, error)) *partition.Keeper {
	t.Helper()
	k, err := partition.NewKeeper(partition.Config{Node: name, Partitions: 16, Leases: leases, Now: c.now, Log: zerolog.Nop(), Probe: probe})
	require.NoError(t, err)
	return k
}

// A keeper that stops renewing (a paused process) stops owning its partitions before its leases
// expire, and another keeper takes them over once they have; the stalled one, resumed, finds
// its leases lost. At no moment do both own a partition.
func TestStalledKeeperStopsOwningBeforeAnotherTakesOver(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	a, b := keeper(t, "a", f, c), keeper(t, "b", f, c)
	require.NoError(t, a.Step(ctx))
	require.Len(t, a.Held(), 16)
	_, owns := a.Owns(3)
	require.True(t, owns)

	// a stalls; b steps every second. Ownership never overlaps.
	for i := 0; i < 8; i++ {
		c.add(time.Second)
		require.NoError(t, b.Step(ctx))
		for p := 0; p < 16; p++ {
			_, ao := a.Owns(p)
			_, bo := b.Owns(p)
			assert.False(t, ao && bo, "partition %d owned twice at +%ds", p, i+1)
		}
	}
	assert.Len(t, b.Held(), 16, "b took every partition once a's leases expired")
	_, owns = a.Owns(3)
	assert.False(t, owns, "a stopped owning when its lease came near expiry")

	require.NoError(t, a.Step(ctx)) // a resumes: its renewals find the leases lost
	assert.Empty(t, a.Held())
}

// Renewing keeps ownership; a graceful release hands everything over at once.
func TestKeeperRenewsAndReleases(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	a := keeper(t, "a", f, c)
	for i := 0; i < 10; i++ {
		require.NoError(t, a.Step(ctx))
		c.add(time.Second)
		_, owns := a.Owns(0)
		assert.True(t, owns, "renewed every second, the lease stays owned")
	}
	b := keeper(t, "b", f, c)
	a.ReleaseAll(ctx)
	require.NoError(t, b.Step(ctx))
	assert.Len(t, b.Held(), 16)
}

// A partition another writer fenced while this node still holds its lease (the fence came from
// a writer without the lease) stops being owned at once; the next step gives the lease back and,
// the assignment giving it to this node again, takes it in a new tenure. A Drop for another
// tenure does nothing.
func TestDroppedPartitionIsGivenBackAndTakenAnew(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	a := keeper(t, "a", f, c)
	require.NoError(t, a.Step(ctx))
	tenure, owns := a.Owns(3)
	require.True(t, owns)
	assert.False(t, a.Drop(3, tenure+1000), "another tenure")
	require.True(t, a.Drop(3, tenure))
	_, owns = a.Owns(3)
	assert.False(t, owns, "not owned from the drop on")
	assert.NotContains(t, a.Held(), 3)
	_, held := a.Tenure(3)
	assert.False(t, held)
	require.NoError(t, a.Step(ctx))
	again, owns := a.Owns(3)
	require.True(t, owns, "given back and taken again")
	assert.NotEqual(t, tenure, again, "in a new tenure")
}

// While the lease store does not answer, a lease past its clock is no longer owned (Owns) but is
// still held on the fence (OwnsFenced), in the same tenure, however long it lasts; a lease found
// lost, a dropped one, and one being handed over are not.
func TestUnreachableStoreKeepsFencedOwnership(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	a := keeper(t, "a", f, c)
	require.NoError(t, a.Step(ctx))
	tenure, owns := a.Owns(3)
	require.True(t, owns)

	f.setDown(true)
	for i := 0; i < 10; i++ {
		c.add(time.Second)
		require.Error(t, a.Step(ctx))
	}
	_, owns = a.Owns(3)
	assert.False(t, owns, "the lease clock lapsed")
	fenced, ok := a.OwnsFenced(3)
	assert.True(t, ok, "held on the fence while the store does not answer")
	assert.Equal(t, tenure, fenced)
	require.True(t, a.Drop(5, a.Held()[5]))
	_, ok = a.OwnsFenced(5)
	assert.False(t, ok, "a dropped partition")

	f.setDown(false) // back, with every key expired: the renewals find the leases lost
	c.add(time.Second)
	b := keeper(t, "b", f, c)
	require.NoError(t, b.Step(ctx)) // b takes the free partitions first
	require.NoError(t, a.Step(ctx))
	_, ok = a.OwnsFenced(3)
	assert.False(t, ok, "a lease found lost is not held on the fence")

	// A lease that lapsed on a store that answers is not held on the fence either.
	c2 := &clock{t: time.Unix(1_000_000, 0)}
	k := keeper(t, "k", newFake(c2.now), c2)
	require.NoError(t, k.Step(ctx))
	c2.add(5 * time.Second)
	_, ok = k.OwnsFenced(1)
	assert.False(t, ok, "not renewed, with no store failure: only the clock counts")
}

// After a gap in its heartbeats longer than the lease TTL (every lease lapsed, and the member
// list forgot every other node), a node that steps first takes back only the partitions it held
// before, not its peer's; the peer takes its own back on its step. A node that does not come
// back has its partitions taken once the while is over.
func TestComebackTakesBackOnlyOwnPartitions(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	a, b := keeper(t, "a", f, c), keeper(t, "b", f, c)
	require.NoError(t, a.Step(ctx))
	require.NoError(t, b.Step(ctx))
	require.NoError(t, a.Step(ctx)) // hands b's share over
	require.NoError(t, b.Step(ctx)) // takes it
	before := map[string]map[int]uint64{"a": a.Held(), "b": b.Held()}
	require.NotEmpty(t, before["a"])
	require.NotEmpty(t, before["b"])
	require.Len(t, a.Held(), 16-len(b.Held()))

	f.setDown(true)
	for i := 0; i < 8; i++ {
		c.add(time.Second)
		require.Error(t, a.Step(ctx))
		require.Error(t, b.Step(ctx))
	}
	f.setDown(false)
	c.add(time.Second)
	require.NoError(t, a.Step(ctx)) // a first: b's leases are free, and b is not a member now
	assert.Len(t, a.Held(), len(before["a"]), "a took back its own partitions only")
	for p := range a.Held() {
		assert.Contains(t, before["a"], p)
	}
	require.NoError(t, b.Step(ctx))
	assert.Len(t, b.Held(), len(before["b"]), "b took back its own")

	// b dies: once the while is over (and b's leases expire), a takes its partitions.
	for i := 0; i < 8; i++ {
		c.add(time.Second)
		require.NoError(t, a.Step(ctx))
	}
	assert.Len(t, a.Held(), 16)
}

// The store goes away in the middle of a step: the heartbeat lands, then the renewals wait out
// the step's bound (the TTL) for answers that never come, and by their end the member list has
// forgotten the peer, whose heartbeats could not land meanwhile. That list is not the members
// from before the gap: after it, a node that steps first still takes back only its own
// partitions, and the peer its own. (The list read after the renewals made this node take every
// partition, its peer's lapsed ones too, and hand them back once the peer showed again: every
// partition fenced and loaded twice; TestLeaseBucketLeaderLossKeepsPartitions under load.)
func TestComebackAfterAStepTheStoreLeftMidway(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	a, b := keeper(t, "a", f, c), keeper(t, "b", f, c)
	require.NoError(t, a.Step(ctx))
	require.NoError(t, b.Step(ctx))
	require.NoError(t, a.Step(ctx)) // hands b's share over
	require.NoError(t, b.Step(ctx)) // takes it
	before := map[string]map[int]uint64{"a": a.Held(), "b": b.Held()}
	require.NotEmpty(t, before["a"])
	require.NotEmpty(t, before["b"])

	var once sync.Once
	f.onRenew(func() {
		once.Do(func() {
			f.setDown(true)
			c.add(f.TTL()) // the renewals wait out the step's bound
		})
	})
	c.add(time.Second / 2)
	require.NoError(t, a.Step(ctx), "the heartbeat landed")
	f.onRenew(nil)
	for i := 0; i < 4; i++ {
		c.add(time.Second)
		require.Error(t, a.Step(ctx))
		require.Error(t, b.Step(ctx))
	}
	f.setDown(false)
	c.add(time.Second)
	require.NoError(t, a.Step(ctx)) // a first: b's leases have lapsed, and b is not a member now
	assert.Len(t, a.Held(), len(before["a"]), "a took back its own partitions only")
	for p := range a.Held() {
		assert.Contains(t, before["a"], p)
	}
	require.NoError(t, b.Step(ctx))
	assert.Equal(t, len(before["b"]), len(b.Held()), "b took back its own")
}
