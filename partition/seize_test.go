package partition_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/partition"
)

// probeKeepers makes keepers a, b and c on one lease table, each with its own probe (a view of
// the cluster: a route between two servers may be closed while each reaches the third).
func probeKeepers(t *testing.T, f *fakeLeases, c *clock, probes map[string]*fakeProbe) map[string]*partition.Keeper {
	t.Helper()
	out := map[string]*partition.Keeper{}
	for _, name := range []string{"a", "b", "c"} {
		out[name] = probedKeeper(t, name, f, c, probes[name].probe)
	}
	return out
}

// A member proven down that is in fact alive but cut off (its server's routes closed, its own
// clients still connected to it) stops deciding only when its lease clock runs out, TTL less a
// quarter (3.75 s) after its last renewal. The partitions seized from it are fenced and loaded
// at once, but no seizer decides for them (Owns, OwnsFenced) while the cut-off member's lease
// clock may still vouch for its answers from memory: at no moment do two keepers own one.
func TestSeizedPartitionIsNotOwnedWhileItsHoldersLeaseClockRuns(t *testing.T) {
	t.Parallel()
	const (
		up   = partition.NodeUp
		down = partition.NodeDown
	)
	c := &clock{t: time.Unix(1_000_000, 0)}
	f := newFake(c.now)
	ctx := context.Background()
	view := map[string]partition.Liveness{"a": up, "b": up, "c": down}
	probes := map[string]*fakeProbe{"a": {answers: view}, "b": {answers: view}, "c": {answers: view}}
	ks := probeKeepers(t, f, c, probes)
	for i := 0; i < 3; i++ {
		for _, n := range []string{"a", "b", "c"} {
			require.NoError(t, ks[n].Step(ctx))
		}
		c.add(time.Second)
	}
	cut := ks["c"].Held()
	require.NotEmpty(t, cut)
	for _, p := range probes {
		p.die() // c is cut off: it steps no more (no quorum), but answers its own clients
	}
	// a and b step every half second from c's last step on: their first read of c's keys comes
	// soon after it, as after a kill a moment after a renewal.
	c.add(-time.Second)
	held, owned := time.Duration(-1), time.Duration(-1)
	for at := time.Second / 2; at <= 7*time.Second; at += time.Second / 2 {
		c.add(time.Second / 2)
		require.NoError(t, ks["a"].Step(ctx))
		require.NoError(t, ks["b"].Step(ctx))
		nHeld, nOwned := 0, 0
		for p := range cut {
			_, cOwns := ks["c"].Owns(p)
			for _, n := range []string{"a", "b"} {
				_, owns := ks[n].Owns(p)
				_, fenced := ks[n].OwnsFenced(p)
				assert.False(t, cOwns && (owns || fenced), "partition %d owned by c and %s at +%v", p, n, at)
				if owns {
					nOwned++
				}
				if _, ok := ks[n].Held()[p]; ok {
					nHeld++
				}
			}
		}
		if nHeld == len(cut) && held < 0 {
			held = at
		}
		if nOwned == len(cut) && owned < 0 {
			owned = at
		}
	}
	t.Logf("c's partitions held by a and b %v after c's last step, owned %v after", held, owned)
	assert.Positive(t, held, "c's partitions taken before its leases lapsed")
	assert.Less(t, held, 4*time.Second, "c's partitions taken before its leases lapsed")
	assert.Positive(t, owned, "c's partitions decided for again")
}

// A member wrongly proven down, alive and renewing its leases (a route between two servers is
// closed while each reaches the third, so the lease store; one way, or both at once as a route's
// close is seen by both of its ends), keeps its partitions: none changes hands while the closed
// route lasts, instead of being seized, fenced and loaded at every step, by one side then the
// other.
func TestMemberThatRenewsKeepsItsPartitionsWhenWronglyProvenDown(t *testing.T) {
	t.Parallel()
	const (
		up   = partition.NodeUp
		down = partition.NodeDown
	)
	for _, tc := range []struct {
		name   string
		aSeesC partition.Liveness
		cSeesA partition.Liveness
	}{
		{"a sees c down", down, up},
		{"a and c see each other down", down, down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Unix(1_000_000, 0)}
			f := newFake(c.now)
			ctx := context.Background()
			probes := map[string]*fakeProbe{
				"a": {answers: map[string]partition.Liveness{"a": up, "b": up, "c": tc.aSeesC}},
				"b": {answers: map[string]partition.Liveness{"a": up, "b": up, "c": up}},
				"c": {answers: map[string]partition.Liveness{"a": tc.cSeesA, "b": up, "c": up}},
			}
			ks := probeKeepers(t, f, c, probes)
			step := func() {
				for _, n := range []string{"a", "b", "c"} {
					require.NoError(t, ks[n].Step(ctx))
				}
				c.add(time.Second)
			}
			for i := 0; i < 3; i++ {
				step()
			}
			before := map[string]map[int]uint64{}
			for n, k := range ks {
				before[n] = k.Held()
				require.NotEmpty(t, before[n])
			}
			for _, p := range probes {
				p.die() // the route between a's and c's servers closes
			}
			for i := 0; i < 8; i++ {
				step()
				for n, k := range ks {
					assert.Equal(t, before[n], k.Held(), "%s's partitions at +%ds", n, i+1)
				}
			}
		})
	}
}
