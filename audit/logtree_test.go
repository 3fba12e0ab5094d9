package audit

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func leafData(i int) []byte { return fmt.Appendf(nil, `{"n":%d}`, i) }

// The log tree's roots equal the hand-written RFC 6962 MerkleRoot, and every proof it builds
// (watched inclusion and consistency, and consistency from a mark) verifies, for many sizes.
func TestLogTreeProofs(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(300)
		m := 1 + rng.IntN(n)
		idx := rng.IntN(n)
		tree := NewLogTree()
		require.NoError(t, tree.WatchInclusion(uint64(idx), uint64(n)))
		var leaves [][32]byte
		var rootM [32]byte
		for i := range n {
			if i == m {
				tree.Mark()
			}
			l := LogLeafHash(leafData(i))
			leaves = append(leaves, l)
			tree.Append(l)
			if i+1 == m {
				rootM = tree.Root()
			}
		}
		if m == n {
			tree.Mark()
		}
		root := tree.Root()
		require.Equal(t, MerkleRoot(leaves), root, "size %d", n)
		require.Equal(t, MerkleRoot(leaves[:m]), rootM, "size %d", m)

		incl, err := tree.InclusionProof(uint64(idx))
		require.NoError(t, err, "inclusion %d of %d", idx, n)
		assert.NoError(t, VerifyLogInclusion(leaves[idx], uint64(idx), uint64(n), incl, root))
		if n > 1 {
			assert.Equal(t, InclusionPath(idx, leaves), incl, "the library's path is the hand-written RFC 6962 one")
		}

		cons, err := tree.ConsistencyProof(uint64(m))
		require.NoError(t, err, "consistency %d -> %d", m, n)
		assert.NoError(t, VerifyLogConsistency(uint64(m), uint64(n), cons, rootM, root))
		other := rootM
		other[0] ^= 1
		assert.Error(t, VerifyLogConsistency(uint64(m), uint64(n), cons, other, root), "another old root")
		if m < n {
			assert.Error(t, VerifyLogConsistency(uint64(m), uint64(n), cons, rootM, other), "another new root")
		}
	}
}

func TestLogTreeEmptyRootAndMissingNodes(t *testing.T) {
	t.Parallel()
	tree := NewLogTree()
	assert.Equal(t, MerkleRoot(nil), tree.Root())
	for i := range 9 {
		tree.Append(LogLeafHash(leafData(i)))
	}
	_, err := tree.InclusionProof(2)
	assert.ErrorIs(t, err, ErrProofUnavailable, "nodes not watched")
}
