package partition_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/partition"
)

// The probe answers, short, for the tables below.
const (
	up      = partition.NodeUp
	down    = partition.NodeDown
	unknown = partition.NodeUnknown
)

// fakeProbe answers NodeUp for every node until died is set, then from a table (a node missing
// from it is NodeUnknown); it counts the probes.
type fakeProbe struct {
	mu      sync.Mutex
	answers map[string]partition.Liveness
	died    bool
	calls   int
}

func (p *fakeProbe) probe(_ context.Context, node string) (partition.Liveness, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if !p.died {
		return partition.NodeUp, nil
	}
	return p.answers[node], nil
}

// die makes the probe answer from its table from now on.
func (p *fakeProbe) die() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.died = true
}

func (p *fakeProbe) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// After a lease-store gap during which node c died, a and b take back their own partitions; c's
// are taken at once when every member not seen again (c) is probed down, and only at the end of
// the while (TTL + 2 ticks: 7 s here) when it is probed up or unknown, when this node's probe of
// itself does not answer up, or without a probe (the behaviour before probes). No probe is sent
// while the store does not answer (a step ends at its failed heartbeat).
func TestComebackEndsEarlyOnlyWhenMissingMembersAreProvenDown(t *testing.T) {
	t.Parallel()
	const whileEnd = 7 * time.Second // settle: TTL 5 s + 2 ticks of 1 s
	for _, tc := range []struct {
		name    string
		answers map[string]partition.Liveness // nil: no Probe configured
		// first and all are when, after the store is back, the first of c's partitions and all
		// of them are held again (a and b step once a second, a first).
		first, all time.Duration
		// lag hides a and b from each other's member list for that long after the store is
		// back (their watches recover after the bucket's election, seconds later).
		lag time.Duration
	}{
		// a's first step probes b (not seen yet: up) and c (down): it takes its share of c's
		// partitions and keeps the while for b's; b's step sees a and ends the while.
		{"c proven down", map[string]partition.Liveness{"a": up, "b": up, "c": down}, 0, 0, 0},
		// Neither sees the other for 5 s: each takes its share of c's at once and none of the
		// other's (before the shares, both waited for the while's end: 7 s).
		{"c proven down, members lag", map[string]partition.Liveness{"a": up, "b": up, "c": down}, 0, 0, 5 * time.Second},
		{"c unknown", map[string]partition.Liveness{"a": up, "b": up, "c": unknown}, whileEnd, whileEnd, 0},
		{"c answers", map[string]partition.Liveness{"a": up, "b": up, "c": up}, whileEnd, whileEnd, 0},
		{"own probe not up", map[string]partition.Liveness{"a": unknown, "b": unknown, "c": down}, whileEnd, whileEnd, 0},
		{"no probe", nil, whileEnd, whileEnd, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Unix(1_000_000, 0)}
			f := newFake(c.now)
			ctx := context.Background()
			fp := &fakeProbe{answers: tc.answers}
			var back time.Time // when the store answered again
			mk := func(name string) *partition.Keeper {
				view := &laggingView{fakeLeases: f, hide: func(n string) bool {
					return n != name && n != "c" && !back.IsZero() && c.now().Sub(back) < tc.lag
				}}
				var probe func(context.Context, string) (partition.Liveness, error)
				if tc.answers != nil {
					probe = fp.probe
				}
				return probedKeeper(t, name, view, c, probe)
			}
			a, b, dead := mk("a"), mk("b"), mk("c")
			for i := 0; i < 3; i++ { // joins and hand-overs settle
				for _, k := range []*partition.Keeper{a, b, dead} {
					require.NoError(t, k.Step(ctx))
				}
			}
			require.NotEmpty(t, dead.Held())
			require.Len(t, a.Held(), 16-len(b.Held())-len(dead.Held()), "every partition held once")
			before, wasA, wasB := map[int]bool{}, map[int]bool{}, map[int]bool{}
			for p := range a.Held() {
				before[p], wasA[p] = true, true
			}
			for p := range b.Held() {
				before[p], wasB[p] = true, true
			}

			f.setDown(true) // the bucket's leader dies, and c with it: c never steps again
			fp.die()
			probed := fp.count()
			for i := 0; i < 8; i++ {
				c.add(time.Second)
				require.Error(t, a.Step(ctx))
				require.Error(t, b.Step(ctx))
			}
			assert.Equal(t, probed, fp.count(), "no probe while the store does not answer")
			f.setDown(false)
			c.add(time.Second)
			back = c.now()

			share := partition.Assign(16, []string{"a", "b"}) // where c's partitions go
			first, all := time.Duration(-1), time.Duration(-1)
			for at := time.Duration(0); at <= whileEnd+time.Second; at += time.Second {
				require.NoError(t, a.Step(ctx))
				require.NoError(t, b.Step(ctx))
				for p := range a.Held() {
					assert.NotContains(t, b.Held(), p, "partition %d held twice", p)
					assert.False(t, wasB[p], "at +%v a took b's partition %d", at, p)
					assert.Equal(t, "a", share[p], "at +%v a took partition %d, b's share of c's", at, p)
				}
				for p := range b.Held() {
					assert.False(t, wasA[p], "at +%v b took a's partition %d", at, p)
					assert.Equal(t, "b", share[p], "at +%v b took partition %d, a's share of c's", at, p)
				}
				ours := countIn(before, a.Held()) + countIn(before, b.Held())
				assert.Equal(t, len(before), ours, "at +%v a and b hold their own partitions", at)
				cs := len(a.Held()) + len(b.Held()) - ours
				if cs > 0 && first < 0 {
					first = at
				}
				if cs == len(dead.Held()) && all < 0 {
					all = at
				}
				c.add(time.Second)
			}
			assert.Equal(t, tc.first, first, "first of c's partitions taken, after the store came back")
			assert.Equal(t, tc.all, all, "all of c's partitions taken, after the store came back")

		})
	}
}

// laggingView is one keeper's view of the lease store whose member list hides the nodes hide
// names (a watch that has not caught up yet).
type laggingView struct {
	*fakeLeases
	hide func(node string) bool
}

func (v *laggingView) Nodes(ctx context.Context) ([]string, error) {
	all, err := v.fakeLeases.Nodes(ctx)
	var out []string
	for _, n := range all {
		if !v.hide(n) {
			out = append(out, n)
		}
	}
	return out, err
}

// countIn counts the partitions of held that are in set.
func countIn(set map[int]bool, held map[int]uint64) int {
	n := 0
	for p := range held {
		if set[p] {
			n++
		}
	}
	return n
}

// A probe that does not return within the bound counts as unknown: the step goes on, and the
// while with it.
func TestSlowProbeIsUnknown(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	block := make(chan struct{})
	defer close(block)
	probe := func(ctx context.Context, node string) (partition.Liveness, error) {
		if node == "a" {
			return partition.NodeUp, nil
		}
		select { // c hangs until the keeper gives up on it
		case <-ctx.Done():
			return partition.NodeDown, nil // an answer after the deadline must not count
		case <-block:
			return partition.NodeUnknown, nil
		}
	}
	a, dead := probedKeeper(t, "a", f, c, probe), probedKeeper(t, "c", f, c, probe)
	for i := 0; i < 3; i++ {
		require.NoError(t, a.Step(ctx))
		require.NoError(t, dead.Step(ctx))
	}
	own := len(a.Held())
	require.Less(t, own, 16)
	f.setDown(true)
	for i := 0; i < 8; i++ {
		c.add(time.Second)
		require.Error(t, a.Step(ctx))
	}
	f.setDown(false)
	c.add(time.Second)
	require.NoError(t, a.Step(ctx))
	assert.Len(t, a.Held(), own, "the while goes on")
}

// Outside a while after a gap, a member proven down while its heartbeat still lives (killed a
// moment ago) leaves the assignment at once and its leases are seized once their keys have not
// moved for two ticks (first read 1 s after the kill, seized 3 s after), not waited out; one that
// is up or unknown, or proven down in a round where this node's own probe did not answer up,
// keeps them until they lapse (the TTL, 5 s after its last renewal: 4 s after the kill here).
func TestMemberProvenDownLosesItsLeasesAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answers map[string]partition.Liveness
		// taken is how long after c's last step all of its partitions are held by a and b.
		taken time.Duration
	}{
		{"c proven down", map[string]partition.Liveness{"a": up, "b": up, "c": down}, 3 * time.Second},
		{"c unknown", map[string]partition.Liveness{"a": up, "b": up, "c": unknown}, 4 * time.Second},
		{"c answers", map[string]partition.Liveness{"a": up, "b": up, "c": up}, 4 * time.Second},
		{"own probe not up", map[string]partition.Liveness{"a": unknown, "b": unknown, "c": down}, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Unix(1_000_000, 0)}
			f := newFake(c.now)
			ctx := context.Background()
			fp := &fakeProbe{answers: tc.answers}
			a, b, dead := probedKeeper(t, "a", f, c, fp.probe), probedKeeper(t, "b", f, c, fp.probe), probedKeeper(t, "c", f, c, fp.probe)
			for i := 0; i < 3; i++ {
				for _, k := range []*partition.Keeper{a, b, dead} {
					require.NoError(t, k.Step(ctx))
				}
				c.add(time.Second)
			}
			lost := dead.Held()
			require.NotEmpty(t, lost)
			fp.die() // c is killed: it never steps again, its heartbeat lives on for the TTL
			taken := time.Duration(-1)
			for at := time.Second; at <= 7*time.Second; at += time.Second {
				c.add(time.Second)
				require.NoError(t, a.Step(ctx))
				require.NoError(t, b.Step(ctx))
				n := 0
				for p := range lost {
					_, inA := a.Held()[p]
					_, inB := b.Held()[p]
					assert.False(t, inA && inB, "partition %d held twice", p)
					if inA || inB {
						n++
					}
				}
				if n == len(lost) && taken < 0 {
					taken = at
				}
			}
			assert.Equal(t, tc.taken, taken, "all of c's partitions held by the survivors")
		})
	}
}
