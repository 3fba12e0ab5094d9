package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/partition"
)

// headStore is a fenceStore whose fence heads are set by the test; it records what was read.
type headStore struct {
	mu    sync.Mutex
	heads map[int]uint64
	fail  bool
	read  []int
}

func (h *headStore) Fence(context.Context, []ledger.FenceClaim) ([]uint64, error) {
	return nil, errors.New("not written in these tests")
}

func (h *headStore) FenceHeads(_ context.Context, ps []int) ([]uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.read = append(h.read, ps...)
	if h.fail {
		return nil, errors.New("no response from stream")
	}
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = h.heads[p]
	}
	return out, nil
}

// oneNode is a lease table in which node "n" takes every partition (revision p+1 for p).
type oneNode struct{}

func (oneNode) TTL() time.Duration                                         { return 5 * time.Second }
func (oneNode) Heartbeat(context.Context, string) error                    { return nil }
func (oneNode) Leave(context.Context, string) error                        { return nil }
func (oneNode) Nodes(context.Context) ([]string, error)                    { return []string{"n"}, nil }
func (oneNode) Acquire(_ context.Context, p int, _ string) (uint64, error) { return uint64(p + 1), nil }
func (oneNode) Holder(context.Context, int) (string, uint64, error)        { return "", 0, nil }
func (oneNode) Seize(context.Context, int, string, uint64) (uint64, error) {
	return 0, partition.ErrHeld
}
func (oneNode) Renew(_ context.Context, _ int, _ string, r uint64) (uint64, error) {
	return r, nil
}
func (oneNode) Release(context.Context, int, string, uint64) error { return nil }

// tenureRig is a node holding 8 partitions (tenure p+1) and a generation that loaded them, each
// under ownership record 100+p, with no writer (what these decisions need of it).
func tenureRig(t *testing.T) (*node, *generation, *headStore) {
	t.Helper()
	k, err := partition.NewKeeper(partition.Config{Node: "n", Partitions: 8, Leases: oneNode{}, Log: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, k.Step(context.Background()))
	hs := &headStore{heads: map[int]uint64{}}
	n := &node{log: zerolog.Nop(), keeper: k, n: 8, fences: hs}
	loaded := map[int]uint64{}
	fences := map[int]uint64{}
	for p := 0; p < 8; p++ {
		loaded[p], fences[p], hs.heads[p] = uint64(p+1), uint64(100+p), uint64(100+p)
	}
	return n, &generation{node: n, tenure: tenures(loaded), fences: fences}, hs
}

// A partition re-acquired in a new tenure whose fence is still the generation's is kept in place
// (its tenure adopted, no record, no load); one whose fence moved is lost to it; one not held
// keeps its accounts while its fence has not moved. Only those are read; a partition handed over
// or found fenced by the writer is neither read nor kept.
func TestSettleTenures(t *testing.T) {
	n, g, hs := tenureRig(t)
	held := map[int]uint64{
		0: 1,  // held in the tenure g loaded: nothing to settle
		1: 21, // re-acquired, fence unchanged: kept
		2: 22, // re-acquired, fence moved: lost
		5: 25, // re-acquired, but g handed it over: fenced and loaded anew
		7: 27, // re-acquired, but g found it fenced by another node
	}
	// 3: not held, fence unchanged (the lease lapsed): kept for a re-acquire. 4: not held, moved.
	// 6: not held, fence unchanged.
	hs.heads[2], hs.heads[4] = 900, 901
	g.handOver(5, false)
	g.moved(7)

	require.NoError(t, n.settleTenures(context.Background(), g, held))
	assert.Equal(t, []int{1, 2, 3, 4, 6}, hs.read, "one read of the partitions to settle")
	want := map[int]uint64{0: 1, 1: 21, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7, 7: 8}
	for p, tenure := range want {
		have, _ := g.tenureOf(p)
		assert.Equal(t, tenure, have, "partition %d's tenure", p)
	}
	assert.Equal(t, uint64(1), n.kept.Load())
	for p, lost := range map[int]bool{0: false, 1: false, 2: true, 3: false, 4: true, 6: false, 7: true} {
		assert.Equal(t, lost, g.lost(p), "partition %d lost", p)
	}
	assert.Equal(t, uint64(100+1), g.fences[1], "kept under the record it had")
}

// Fence heads that cannot be read settle nothing: an error while a re-acquired partition waits
// for them (the next reconcile tries again), none while only lapsed ones do.
func TestSettleTenuresUnread(t *testing.T) {
	n, g, hs := tenureRig(t)
	hs.fail = true
	lapsed := map[int]uint64{}
	for p := 1; p < 8; p++ {
		lapsed[p] = uint64(p + 1)
	}
	require.NoError(t, n.settleTenures(context.Background(), g, lapsed), "partition 0 lapsed only")
	assert.False(t, g.lost(0))
	require.Error(t, n.settleTenures(context.Background(), g, map[int]uint64{0: 50}))
	have, _ := g.tenureOf(0)
	assert.Equal(t, uint64(1), have, "not adopted")
	assert.False(t, g.lost(0))
}

// forgetLost drops the accounts of a partition the node no longer holds only when the generation
// cannot keep it (its fence moved, it was handed over, it has no fence); a partition whose lease
// merely lapsed keeps them, so that a re-acquire needs no load, and one still being handed over
// keeps them for its snapshot.
func TestLostPartitionsKeepLapsedOnes(t *testing.T) {
	n, g, _ := tenureRig(t)
	g.tenure[2].Store(92) // the keeper holds 2..6 in other tenures than g: not held by g now
	g.tenure[3].Store(93)
	g.tenure[4].Store(94)
	g.tenure[5].Store(95)
	g.tenure[6].Store(96)
	delete(g.fences, 6)
	g.moved(3)
	g.handOver(4, false)
	g.forgotten = map[int]bool{5: true}
	// Held (0 only) leaves out 1 and 7, still in the keeper in g's tenure: being handed over.
	held := map[int]uint64{0: 1}
	assert.Equal(t, []int{3, 4, 6}, n.lostPartitions(g, held))
}
