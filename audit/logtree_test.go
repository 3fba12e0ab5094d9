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

// A consistency proof from size 0 holds only from the empty tree's root (SHA-256 of nothing):
// a size-0 checkpoint that signs any other root extends nothing. The equal-size case needs equal
// roots and an empty path.
func TestVerifyLogConsistencyEdgeSizes(t *testing.T) {
	t.Parallel()
	tree := NewLogTree()
	for i := range 5 {
		tree.Append(LogLeafHash(leafData(i)))
	}
	root5, empty := tree.Root(), LogTreeEmptyRoot()
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hexHash(empty))
	require.NoError(t, VerifyLogConsistency(0, 5, nil, empty, root5))
	require.NoError(t, VerifyLogConsistency(0, 0, nil, empty, empty))
	require.NoError(t, VerifyLogConsistency(5, 5, nil, root5, root5))

	bogus := LogLeafHash([]byte("rewritten"))
	assert.ErrorIs(t, VerifyLogConsistency(0, 5, nil, bogus, root5), ErrProofInvalid, "size 0 with a root other than the empty tree's")
	assert.ErrorIs(t, VerifyLogConsistency(0, 0, nil, bogus, bogus), ErrProofInvalid)
	assert.ErrorIs(t, VerifyLogConsistency(5, 5, nil, root5, bogus), ErrProofInvalid)
	assert.ErrorIs(t, VerifyLogConsistency(0, 5, [][32]byte{root5}, empty, root5), ErrProofInvalid, "a path from size 0")
	assert.ErrorIs(t, ConsistencyProof{Size1: 0, Size2: 5}.Verify(bogus, root5), ErrProofInvalid)
}
