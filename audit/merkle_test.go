package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
)

// RFC 6962 test vectors (certificate-transparency): leaves are raw data hashed as 0x00||data.
var ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var ctRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func ctLeafHashes(t *testing.T) [][32]byte {
	t.Helper()
	out := make([][32]byte, len(ctLeaves))
	for i, s := range ctLeaves {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		out[i] = sha256.Sum256(append([]byte{0}, b...))
	}
	return out
}

func TestMerkleRootMatchesRFC6962Vectors(t *testing.T) {
	t.Parallel()
	leaves := ctLeafHashes(t)
	for n := 1; n <= len(leaves); n++ {
		root := audit.MerkleRoot(leaves[:n])
		assert.Equal(t, ctRoots[n-1], hex.EncodeToString(root[:]), "tree of %d leaves", n)
	}
	empty := audit.MerkleRoot(nil)
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hex.EncodeToString(empty[:]))
}

func leafSet(n int) [][32]byte {
	out := make([][32]byte, n)
	for i := range out {
		out[i] = audit.LeafHash(audit.Leaf{AccountID: fmt.Sprintf("acc-%03d", i), Version: uint64(i + 1), Hash: fmt.Sprintf("%064x", i)})
	}
	return out
}

func TestEveryInclusionProofVerifiesAndNoOtherDoes(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 33; n++ {
		leaves := leafSet(n)
		root := audit.MerkleRoot(leaves)
		for m := range n {
			path := audit.InclusionPath(m, leaves)
			require.NoError(t, audit.VerifyInclusion(leaves[m], uint64(m), uint64(n), path, root), "leaf %d of %d", m, n)
			other := leaves[(m+1)%n]
			if n > 1 {
				assert.ErrorIs(t, audit.VerifyInclusion(other, uint64(m), uint64(n), path, root), audit.ErrProofInvalid, "another leaf at %d of %d", m, n)
			}
			if n > 1 && m+1 < n {
				assert.ErrorIs(t, audit.VerifyInclusion(leaves[m], uint64(m+1), uint64(n), path, root), audit.ErrProofInvalid, "wrong index %d of %d", m, n)
			}
			if len(path) > 0 {
				bad := append([][32]byte(nil), path...)
				bad[0][0] ^= 1
				assert.ErrorIs(t, audit.VerifyInclusion(leaves[m], uint64(m), uint64(n), bad, root), audit.ErrProofInvalid)
				assert.ErrorIs(t, audit.VerifyInclusion(leaves[m], uint64(m), uint64(n), path[:len(path)-1], root), audit.ErrProofInvalid, "short path")
			}
			assert.ErrorIs(t, audit.VerifyInclusion(leaves[m], uint64(m), uint64(n), append(path, root), root), audit.ErrProofInvalid, "long path")
		}
	}
}

func TestLeafHashCoversEveryField(t *testing.T) {
	t.Parallel()
	base := audit.Leaf{AccountID: "acc-1", Version: 7, Hash: fmt.Sprintf("%064x", 7)}
	h := audit.LeafHash(base)
	for _, l := range []audit.Leaf{
		{AccountID: "acc-2", Version: 7, Hash: base.Hash},
		{AccountID: "acc-1", Version: 8, Hash: base.Hash},
		{AccountID: "acc-1", Version: 7, Hash: fmt.Sprintf("%064x", 8)},
		{AccountID: "acc-1" + base.Hash[:1], Version: 7, Hash: base.Hash[1:]},
	} {
		assert.NotEqual(t, h, audit.LeafHash(l), "%+v", l)
	}
}
