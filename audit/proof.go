package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
)

// Proof shows that one account's chain head is a leaf of a signed checkpoint's accounts tree:
// with it and the account's events, a third party can check that account's history against the
// checkpoint without seeing any other account.
type Proof struct {
	Checkpoint Checkpoint `json:"checkpoint"`
	Leaf       Leaf       `json:"leaf"`
	// HeadPosition is the stream position of the account's last event at the checkpoint.
	HeadPosition uint64 `json:"head_position"`
	LeafIndex    uint64 `json:"leaf_index"`
	TreeSize     uint64 `json:"tree_size"`
	// LeafHash and Path are hex SHA-256 values; Path runs from the leaf's sibling to the root.
	LeafHash string   `json:"leaf_hash"`
	Path     []string `json:"path"`
}

// Verify checks the checkpoint's signature (against trusted, see VerifySignature) and that the
// path leads from the leaf to the signed accounts root.
func (p Proof) Verify(trusted []ed25519.PublicKey) error {
	if err := p.Checkpoint.VerifySignature(trusted); err != nil {
		return err
	}
	if p.TreeSize != uint64(p.Checkpoint.Accounts) {
		return fmt.Errorf("%w: tree of %d leaves, checkpoint has %d accounts", ErrProofInvalid, p.TreeSize, p.Checkpoint.Accounts)
	}
	leaf := LeafHash(p.Leaf)
	if p.LeafHash != "" && p.LeafHash != hexHash(leaf) {
		return fmt.Errorf("%w: leaf_hash does not match the leaf", ErrProofInvalid)
	}
	root, err := parseHash(p.Checkpoint.AccountsRoot)
	if err != nil {
		return fmt.Errorf("%w: accounts_root: %v", ErrProofInvalid, err)
	}
	path := make([][32]byte, len(p.Path))
	for i, s := range p.Path {
		if path[i], err = parseHash(s); err != nil {
			return fmt.Errorf("%w: path[%d]: %v", ErrProofInvalid, i, err)
		}
	}
	return VerifyInclusion(leaf, p.LeafIndex, p.TreeSize, path, root)
}

// BuildProof recomputes the accounts tree at checkpoint seq from the stream, checks it against
// the signed root, and returns the account's inclusion proof.
func BuildProof(ctx context.Context, src *Source, accountID string, seq uint64, trusted []ed25519.PublicKey) (Proof, error) {
	cp, err := src.Checkpoint(ctx, seq)
	if err != nil {
		return Proof{}, err
	}
	if err := cp.VerifySignature(trusted); err != nil {
		return Proof{}, err
	}
	chain := NewChain()
	if subjects, err := src.Subjects(); err == nil { // else: a stream this build cannot name; the roots still decide
		chain.SetSubjects(subjects)
	}
	if _, err := src.Scan(ctx, Filter{ToPosition: cp.Position}, func(m Message) error {
		chain.Apply(m)
		return nil
	}); err != nil {
		return Proof{}, err
	}
	if chain.Position() < cp.Position || chain.AccountsRoot() != cp.AccountsRoot {
		return Proof{}, fmt.Errorf("%w: the stream up to position %d does not reproduce checkpoint %d's accounts root; run audit verify",
			ErrRootMismatch, cp.Position, cp.Seq)
	}
	ids, leaves := chain.leafHashes()
	i := sort.SearchStrings(ids, accountID)
	if i == len(ids) || ids[i] != accountID {
		return Proof{}, fmt.Errorf("%w: account %s had no events at position %d", ErrAccountUnknown, accountID, cp.Position)
	}
	leaf, pos, _ := chain.Head(accountID)
	p := Proof{Checkpoint: cp, Leaf: leaf, HeadPosition: pos, LeafIndex: uint64(i), TreeSize: uint64(len(ids)),
		LeafHash: hexHash(leaves[i]), Path: []string{}}
	for _, h := range InclusionPath(i, leaves) {
		p.Path = append(p.Path, hexHash(h))
	}
	return p, nil
}
