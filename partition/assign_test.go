package partition_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/partition"
)

func counts(owners []string) map[string]int {
	c := map[string]int{}
	for _, o := range owners {
		c[o]++
	}
	return c
}

func TestAssignOneNodeOwnsEverything(t *testing.T) {
	t.Parallel()
	owners := partition.Assign(64, []string{"n1"})
	assert.Equal(t, map[string]int{"n1": 64}, counts(owners))
	assert.Equal(t, make([]string, 64), partition.Assign(64, nil), "no nodes, no owners")
}

func TestAssignIsOrderIndependent(t *testing.T) {
	t.Parallel()
	a := partition.Assign(64, []string{"n1", "n2", "n3"})
	b := partition.Assign(64, []string{"n3", "n1", "n2"})
	assert.Equal(t, a, b)
}

func TestAssignSpreads(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3, 5, 12} {
		var nodes []string
		for i := 0; i < n; i++ {
			nodes = append(nodes, fmt.Sprintf("ledger%d", i+1))
		}
		c := counts(partition.Assign(64, nodes))
		require.Len(t, c, n, "every node gets partitions with %d nodes", n)
		for node, k := range c {
			// Rendezvous hashing spreads by chance, not exactly: a node holds between a third and
			// two and a half times its fair share here (12 nodes: 2 to 13 of 64).
			assert.GreaterOrEqual(t, k*3, 64/n, "%s holds %d of 64 with %d nodes", node, k, n)
			assert.LessOrEqual(t, k*2, 64*5/n, "%s holds %d of 64 with %d nodes", node, k, n)
		}
	}
}

func TestAssignMovesOnlyWhatMustMove(t *testing.T) {
	t.Parallel()
	before := partition.Assign(64, []string{"n1", "n2"})
	after := partition.Assign(64, []string{"n1", "n2", "n3"})
	moved := 0
	for p := range before {
		if before[p] != after[p] {
			assert.Equal(t, "n3", after[p], "partition %d moved between old nodes", p)
			moved++
		}
	}
	assert.Positive(t, moved, "the new node gets partitions")
	// And back: when n3 leaves, only its partitions move.
	back := partition.Assign(64, []string{"n1", "n2"})
	assert.Equal(t, before, back)
}
