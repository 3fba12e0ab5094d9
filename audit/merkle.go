package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Leaf is one account's chain head: the last event's version and hash. The accounts root of a
// checkpoint is the Merkle tree over every account's Leaf, sorted by account id.
type Leaf struct {
	AccountID string `json:"account_id"`
	Version   uint64 `json:"version"`
	Hash      string `json:"hash"`
}

// Domain-separation prefixes of RFC 6962 / RFC 9162 (Certificate Transparency): a leaf can
// never be mistaken for an interior node.
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// LeafHash is SHA-256(0x00 || len(id) as uint16 || id || version as uint64 || hash), all
// integers big-endian. The hash is taken as its stored text, so a malformed head still hashes.
func LeafHash(l Leaf) [32]byte {
	h := sha256.New()
	var buf [10]byte
	buf[0] = leafPrefix
	binary.BigEndian.PutUint16(buf[1:3], uint16(len(l.AccountID)))
	h.Write(buf[:3])
	h.Write([]byte(l.AccountID))
	binary.BigEndian.PutUint64(buf[:8], l.Version)
	h.Write(buf[:8])
	h.Write([]byte(l.Hash))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func nodeHash(left, right [32]byte) [32]byte {
	var b [65]byte
	b[0] = nodePrefix
	copy(b[1:33], left[:])
	copy(b[33:], right[:])
	return sha256.Sum256(b[:])
}

// split is the largest power of two smaller than n (n >= 2), as RFC 6962 section 2.1 splits.
func split(n int) int {
	return 1 << (bits.Len(uint(n-1)) - 1)
}

// MerkleRoot is the RFC 6962 Merkle Tree Hash over leaf hashes in order; the empty tree hashes to
// SHA-256 of nothing.
func MerkleRoot(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return nodeHash(MerkleRoot(leaves[:k]), MerkleRoot(leaves[k:]))
}

// InclusionPath is the RFC 6962 audit path of leaf m: the sibling hashes from the leaf up.
func InclusionPath(m int, leaves [][32]byte) [][32]byte {
	if len(leaves) <= 1 || m < 0 || m >= len(leaves) {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		return append(InclusionPath(m, leaves[:k]), MerkleRoot(leaves[k:]))
	}
	return append(InclusionPath(m-k, leaves[k:]), MerkleRoot(leaves[:k]))
}

// ErrProofInvalid means an inclusion proof does not lead to the root it claims.
var ErrProofInvalid = errors.New("inclusion proof invalid")

// VerifyInclusion checks that leaf is leaf number index of a tree of size leaves whose root is
// root, following RFC 9162 section 2.1.3.2.
func VerifyInclusion(leaf [32]byte, index, size uint64, path [][32]byte, root [32]byte) error {
	if index >= size {
		return fmt.Errorf("%w: index %d outside a tree of %d leaves", ErrProofInvalid, index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range path {
		if sn == 0 {
			return fmt.Errorf("%w: path longer than the tree is deep", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: path shorter than the tree is deep", ErrProofInvalid)
	}
	if r != root {
		return fmt.Errorf("%w: path leads to %x, not to root %x", ErrProofInvalid, r, root)
	}
	return nil
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }

func parseHash(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("%q is not a hex SHA-256", s)
	}
	copy(out[:], b)
	return out, nil
}
