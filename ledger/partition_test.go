package ledger_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/ledger"
)

func TestPartitionOfDegenerateCounts(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 0, ledger.PartitionOf("anything", 1))
	assert.Equal(t, 0, ledger.PartitionOf("anything", 0))
	assert.Equal(t, 2166136261%64, ledger.PartitionOf("", 64), "the FNV-1a offset basis")
}

func TestPartitionOfSpreads(t *testing.T) {
	t.Parallel()
	const n, accounts = 64, 64000
	counts := make([]int, n)
	for i := 0; i < accounts; i++ {
		p := ledger.PartitionOf(fmt.Sprintf("acct-%d", i), n)
		if p < 0 || p >= n {
			t.Fatalf("partition %d out of range", p)
		}
		counts[p]++
	}
	for p, c := range counts {
		assert.InDelta(t, accounts/n, c, accounts/n/4, "partition %d holds %d accounts", p, c)
	}
}

func TestPartitionOfPinned(t *testing.T) {
	t.Parallel()
	// Computed once with hash/fnv (New32a) and pinned: a change would move accounts between
	// partitions of an existing store.
	got := []int{ledger.PartitionOf("acme", 64), ledger.PartitionOf("A-1", 64), ledger.PartitionOf("acct-42", 64)}
	assert.Equal(t, []int{47, 38, 3}, got, "hash/fnv New32a agrees")
}
