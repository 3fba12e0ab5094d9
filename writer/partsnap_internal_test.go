package writer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
)

type mapSnaps map[string][]byte

func (m mapSnaps) Save(_ context.Context, name string, data []byte) error { m[name] = data; return nil }
func (m mapSnaps) Load(_ context.Context, name string) ([]byte, error)    { return m[name], nil }

type clockAt struct{}

func (clockAt) Now() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }

func heldWriter(t *testing.T, snaps SnapshotStore, held ...int) *Writer {
	t.Helper()
	in := map[int]bool{}
	for _, p := range held {
		in[p] = true
	}
	w, err := New(Options{Store: memstore.New(), Clock: clockAt{}, NewID: func() string { return "id" }, Log: zerolog.Nop(),
		Snapshots: snaps, Partitions: Partitions{Count: 4, Held: held},
		Holds: func(id string) bool { return in[ledger.PartitionOf(id, 4)] }})
	require.NoError(t, err)
	return w
}

// TestLegacyEntriesTravelOnce: compacted entries that name no partition (read from a v4
// snapshot) are saved once, in an object named by their content that every partition snapshot
// names; a writer loading any partition gets them back, and does not save them again.
func TestLegacyEntriesTravelOnce(t *testing.T) {
	t.Parallel()
	snaps := mapSnaps{}
	w := heldWriter(t, snaps, 0, 1)
	legacy, ok := fromV4Entry(7 | 1<<48)
	require.True(t, ok)
	known, ok := compactEntry(9, 2, 1)
	require.True(t, ok)
	other, ok := compactEntry(11, 1, 0)
	require.True(t, ok)
	w.idem.compacted = map[uint64]uint64{commandKey("old"): legacy, commandKey("new"): known, commandKey("zero"): other}

	objs, err := w.encodePartitions(5, []int{0, 1, 2, 3})
	require.NoError(t, err)
	require.Len(t, objs, 9, "the legacy object, then each partition's snapshot and id list")
	require.True(t, strings.HasPrefix(objs[0].name, "writer-v5-legacy-"))
	for _, o := range objs {
		require.NoError(t, snaps.Save(context.Background(), o.name, o.data))
	}
	w.snap.legacy.saved.Store(true)
	again, err := w.encodePartitions(6, []int{1})
	require.NoError(t, err)
	assert.Len(t, again, 2, "saved once")
	for _, o := range again {
		require.NoError(t, snaps.Save(context.Background(), o.name, o.data))
	}

	r := heldWriter(t, snaps, 1)
	rp, err := r.loadPartitions(context.Background(), false)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), rp.from, "from the oldest snapshot head (5) on")
	assert.Equal(t, []uint64{5, 6, 5, 5}, rp.above)
	assert.Equal(t, map[uint64]uint64{commandKey("old"): legacy, commandKey("new"): known}, r.idem.compacted,
		"the legacy entry and partition 1's, not partition 0's")
	assert.Equal(t, objs[0].name, r.snap.legacy.name)
	assert.True(t, r.snap.legacy.saved.Load())
}
