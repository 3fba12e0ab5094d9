package storetest

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// partitionCount is the partition count of a store that does not say its own.
func partitionCount(st ledger.Store) int {
	if c, ok := st.(interface{ Partitions() int }); ok {
		return c.Partitions()
	}
	return ledger.DefaultPartitions
}

// inPartition is the first account id with prefix that falls in partition p of n.
func inPartition(t *testing.T, prefix string, p, n int) string {
	for i := range 100000 {
		if id := prefix + strconv.Itoa(i); ledger.PartitionOf(id, n) == p {
			return id
		}
	}
	t.Fatalf("no account id %s* in partition %d of %d", prefix, p, n)
	return ""
}

// partitionReads checks ReadPartitions, for a store that has it: exactly the records of the
// partitions asked for, in order, from the position asked for, and the stream's head whatever
// it holds (another partition's record, an ownership record).
func partitionReads(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	pr, ok := st.(ledger.PartitionReader)
	if !ok {
		t.Skip("the store reads partitions only together")
	}
	ctx := context.Background()
	n := partitionCount(st)
	a, b, c := inPartition(t, "a", 1, n), inPartition(t, "b", 2, n), inPartition(t, "c", 3, n)
	a2 := inPartition(t, "x", 1, n) // a second account of a's partition
	mustAppend := func(recs ...ledger.Record) uint64 {
		pos, err := st.Append(ctx, recs)
		require.NoError(t, err)
		return pos[len(pos)-1]
	}
	mustAppend(first(a, "a1", 0), first(b, "b1", 0))
	mid := mustAppend(first(c, "c1", 0))
	mustAppend(at(a, "a2", 2), first(a2, "x1", 0))
	_, err := st.Fence(ctx, []ledger.FenceClaim{claim(1, "node-a", 1, 0)})
	require.NoError(t, err)
	mustAppend(at(b, "b2", 2))
	last := mustAppend(at(c, "c2", 2)) // the head: partition 3's
	// read returns the tags of each partition's records, in the order they came.
	read := func(from uint64, ps ...int) (map[int][]string, uint64) {
		got := map[int][]ledger.Record{}
		head, err := pr.ReadPartitions(ctx, from, n, ps, func(r ledger.Record) error {
			p := ledger.PartitionOf(r.AccountID, n)
			got[p] = append(got[p], r)
			return nil
		})
		require.NoError(t, err)
		out := map[int][]string{}
		for p, recs := range got {
			assert.Contains(t, ps, p, "records of partition %d", p)
			for i := 1; i < len(recs); i++ {
				assert.Less(t, recs[i-1].Position, recs[i].Position, "partition %d in position order", p)
			}
			out[p] = tags(t, recs)
		}
		return out, head
	}
	got, head := read(1, 1)
	assert.Equal(t, map[int][]string{1: {"a1", "a2", "x1"}}, got, "partition 1 only, in order")
	assert.Equal(t, last, head, "the head is the stream's, though it holds another partition's record")
	got, _ = read(1, 2, 1)
	assert.Equal(t, map[int][]string{1: {"a1", "a2", "x1"}, 2: {"b1", "b2"}}, got, "two partitions")
	got, head = read(mid+1, 1, 3)
	assert.Equal(t, map[int][]string{1: {"a2", "x1"}, 3: {"c2"}}, got, "from a position on")
	assert.Equal(t, last, head)
	var most []int // every partition but 2: a store may read these whole
	for p := range n {
		if p != 2 {
			most = append(most, p)
		}
	}
	got, head = read(1, most...)
	assert.Equal(t, map[int][]string{1: {"a1", "a2", "x1"}, 3: {"c1", "c2"}}, got, "all but one partition")
	assert.Equal(t, last, head)
	got, head = read(1, 5)
	assert.Empty(t, got, "a partition with no record")
	assert.Equal(t, last, head)
	got, head = read(last+1, 1)
	assert.Empty(t, got, "nothing past the head")
	assert.Equal(t, last, head)
}
