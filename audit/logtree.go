package audit

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The log tree is the RFC 6962 Merkle tree over every stored LEDGER message in stream order:
// leaf i (from 0) is the message at position i+1, and its leaf hash is SHA-256(0x00 || the
// stored bytes). A tree of size N covers positions 1..N. Checkpoints sign its root; inclusion
// and consistency proofs are RFC 6962 / RFC 9162 proofs over it. docs/FORMAT.md specifies it.

// ErrProofUnavailable means a proof was asked of a LogTree that did not keep the nodes it needs.
var ErrProofUnavailable = errors.New("proof nodes not kept")

var treeHasher = rfc6962.DefaultHasher

var rangeFactory = compact.RangeFactory{Hash: treeHasher.HashChildren}

// LogLeafHash is the leaf hash of one stored message: SHA-256(0x00 || data).
func LogLeafHash(data []byte) [32]byte {
	var out [32]byte
	copy(out[:], treeHasher.HashLeaf(data))
	return out
}

// LogTree follows the stream and keeps only what its roots and the proofs asked of it need: the
// compact range of the whole tree (one hash per set bit of the size) plus the nodes watched for
// proofs, so it holds O(log n) hashes however long the stream.
//
// A proof needs nodes of the tree that are gone from the compact range by the time it is asked:
// Watch them (inclusion and consistency proofs whose sizes are known beforehand), or Mark the
// size a later consistency proof starts from.
type LogTree struct {
	rng *compact.Range
	// nodes holds the hashes of watched nodes once complete; want the watched ones to come.
	nodes map[compact.NodeID][]byte
	want  map[compact.NodeID]bool
	// markNodes and markWant are the same for the last Mark, replaced at each.
	markNodes map[compact.NodeID][]byte
	markWant  map[compact.NodeID]bool
	// mark is the size Mark was last called at (0: none); marked tells whether it was.
	mark   uint64
	marked bool
}

// NewLogTree starts an empty tree.
func NewLogTree() *LogTree {
	return &LogTree{rng: rangeFactory.NewEmptyRange(0), nodes: map[compact.NodeID][]byte{}, want: map[compact.NodeID]bool{},
		markNodes: map[compact.NodeID][]byte{}, markWant: map[compact.NodeID]bool{}}
}

// Size is the number of leaves.
func (t *LogTree) Size() uint64 { return t.rng.End() }

// Append adds the leaf hash of the next message.
func (t *LogTree) Append(leaf [32]byte) {
	var visit compact.VisitFn
	if len(t.want) > 0 || len(t.markWant) > 0 {
		visit = func(id compact.NodeID, h []byte) {
			if t.want[id] {
				t.nodes[id] = h
				delete(t.want, id)
			}
			if t.markWant[id] {
				t.markNodes[id] = h
				delete(t.markWant, id)
			}
		}
	}
	// Append fails only for a range that does not start at 0, which this one does.
	_ = t.rng.Append(leaf[:], visit)
}

// LogTreeEmptyRoot is the root of the empty tree: SHA-256 of nothing.
func LogTreeEmptyRoot() [32]byte { return NewLogTree().Root() }

// Root is the RFC 6962 root hash (SHA-256 of nothing for the empty tree).
func (t *LogTree) Root() [32]byte {
	var out [32]byte
	if t.rng.End() == 0 {
		copy(out[:], treeHasher.EmptyRoot())
		return out
	}
	h, _ := t.rng.GetRootHash(nil)
	copy(out[:], h)
	return out
}

// Watch asks the tree to keep these nodes' hashes as they complete. Watch them before the
// stream passes them.
func (t *LogTree) Watch(ids []compact.NodeID) {
	for _, id := range ids {
		if _, ok := t.nodes[id]; !ok {
			t.want[id] = true
		}
	}
}

// WatchInclusion prepares an inclusion proof of leaf index in the tree of size.
func (t *LogTree) WatchInclusion(index, size uint64) error {
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return err
	}
	t.Watch(n.IDs)
	return nil
}

// WatchConsistency prepares a consistency proof from size1 to size2.
func (t *LogTree) WatchConsistency(size1, size2 uint64) error {
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return err
	}
	t.Watch(n.IDs)
	return nil
}

// Mark remembers the tree at its current size so that ConsistencyProof can later prove any
// larger size consistent with it: it keeps the compact range of [0, size) and watches the
// right siblings of the path of the last leaf, which are all a consistency proof from this size
// needs besides the nodes of the final compact range. It forgets the previous mark.
func (t *LogTree) Mark() {
	t.markNodes, t.markWant = map[compact.NodeID][]byte{}, map[compact.NodeID]bool{}
	t.mark, t.marked = t.Size(), true
	if t.mark == 0 {
		return
	}
	for i, id := range compact.RangeNodes(0, t.mark, nil) {
		t.markNodes[id] = t.rng.Hashes()[i]
	}
	last := t.mark - 1
	for level := range uint(64) {
		if idx := last >> level; idx&1 == 0 {
			t.markWant[compact.NewNodeID(level, idx+1)] = true
		}
	}
}

// Marked is the size of the last Mark and whether there was one.
func (t *LogTree) Marked() (uint64, bool) { return t.mark, t.marked }

// node returns a node's hash from the kept nodes or the current compact range.
func (t *LogTree) node(id compact.NodeID) ([]byte, bool) {
	if h, ok := t.nodes[id]; ok {
		return h, true
	}
	if h, ok := t.markNodes[id]; ok {
		return h, true
	}
	for i, rid := range compact.RangeNodes(0, t.Size(), nil) {
		if rid == id {
			return t.rng.Hashes()[i], true
		}
	}
	return nil, false
}

func (t *LogTree) build(n proof.Nodes) ([][32]byte, error) {
	hashes := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, ok := t.node(id)
		if !ok {
			return nil, fmt.Errorf("%w: node at level %d, index %d", ErrProofUnavailable, id.Level, id.Index)
		}
		hashes[i] = h
	}
	hashes, err := n.Rehash(hashes, treeHasher.HashChildren)
	if err != nil {
		return nil, err
	}
	out := make([][32]byte, len(hashes))
	for i, h := range hashes {
		copy(out[i][:], h)
	}
	return out, nil
}

// InclusionProof is the audit path of leaf index in the tree at its current size; its nodes
// must have been watched (WatchInclusion) before the stream passed them.
func (t *LogTree) InclusionProof(index uint64) ([][32]byte, error) {
	n, err := proof.Inclusion(index, t.Size())
	if err != nil {
		return nil, err
	}
	return t.build(n)
}

// ConsistencyProof proves the tree at its current size consistent with the tree at size1,
// which must be the marked size or one whose proof was watched (WatchConsistency).
func (t *LogTree) ConsistencyProof(size1 uint64) ([][32]byte, error) {
	n, err := proof.Consistency(size1, t.Size())
	if err != nil {
		return nil, err
	}
	return t.build(n)
}

// VerifyLogInclusion checks that leaf is leaf number index of the tree of size with root,
// as RFC 9162 section 2.1.3.2 says.
func VerifyLogInclusion(leaf [32]byte, index, size uint64, path [][32]byte, root [32]byte) error {
	if err := proof.VerifyInclusion(treeHasher, index, size, leaf[:], slices32(path), root[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrProofInvalid, err)
	}
	return nil
}

// VerifyLogConsistency checks that the tree of size2 with root2 extends the tree of size1 with
// root1, as RFC 9162 section 2.1.4.2 says. RFC 9162 leaves out size1 = 0: every tree extends the
// empty one, whose root is SHA-256 of nothing, so the path must be empty and root1 that root
// (transparency-dev/merkle accepts any root1 there, so a checkpoint of size 0 signing another
// root would pass as the start of any history).
func VerifyLogConsistency(size1, size2 uint64, path [][32]byte, root1, root2 [32]byte) error {
	if size1 == 0 && root1 != LogTreeEmptyRoot() {
		return fmt.Errorf("%w: a tree of size 0 has root %s, not %s", ErrProofInvalid, hexHash(LogTreeEmptyRoot()), hexHash(root1))
	}
	if err := proof.VerifyConsistency(treeHasher, size1, size2, slices32(path), root1[:], root2[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrProofInvalid, err)
	}
	return nil
}

func slices32(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
