package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrNotCovered means a position lies beyond the checkpoint a proof is asked under.
var ErrNotCovered = errors.New("position not covered by the checkpoint")

// ErrNoLogCheckpoint means the checkpoint asked for is a format-1 one, which signs no log tree.
var ErrNoLogCheckpoint = errors.New("not a log-tree (format-2) checkpoint")

// EventProof shows that one stored message is in the log tree a signed checkpoint commits to:
// with it alone (and the signer's verifier key), anyone can check that the event was part of
// the ledger's history at that checkpoint. docs/FORMAT.md specifies it.
type EventProof struct {
	// Position is the message's LEDGER position; its leaf index is Position-1.
	Position  uint64 `json:"position"`
	LeafIndex uint64 `json:"leaf_index"`
	TreeSize  uint64 `json:"tree_size"`
	// EventBase64 is the stored message, base64: the leaf hash is SHA-256(0x00 || its bytes).
	EventBase64 string `json:"event_base64"`
	// LeafHash, Path and Root are hex SHA-256 values; Path runs from the leaf's sibling up.
	LeafHash string   `json:"leaf_hash"`
	Path     []string `json:"inclusion_path"`
	Root     string   `json:"root"`
	// CheckpointSeq is the checkpoint's number in LEDGER_CHECKPOINTS; Checkpoint the signed
	// note exactly as stored.
	CheckpointSeq uint64 `json:"checkpoint_seq"`
	Checkpoint    string `json:"checkpoint"`
}

// Verify checks the checkpoint's signature against keys (unchecked when keys is empty: the
// caller pins them some other way), that it commits to Root and TreeSize, and that the path
// leads from the event's leaf hash to Root. It returns the checkpoint.
func (p EventProof) Verify(keys []ed25519.PublicKey) (LogCheckpoint, error) {
	cp, err := ParseLogCheckpoint([]byte(p.Checkpoint), keys)
	if err != nil {
		return cp, err
	}
	if cp.Size != p.TreeSize || hexHash(cp.Root) != p.Root {
		return cp, fmt.Errorf("%w: the checkpoint signs size %d root %s, the proof says size %d root %s",
			ErrProofInvalid, cp.Size, hexHash(cp.Root), p.TreeSize, p.Root)
	}
	if p.LeafIndex+1 != p.Position {
		return cp, fmt.Errorf("%w: leaf index %d is not position %d - 1", ErrProofInvalid, p.LeafIndex, p.Position)
	}
	data, err := base64.StdEncoding.DecodeString(p.EventBase64)
	if err != nil {
		return cp, fmt.Errorf("%w: event_base64: %v", ErrProofInvalid, err)
	}
	leaf := LogLeafHash(data)
	if p.LeafHash != "" && p.LeafHash != hexHash(leaf) {
		return cp, fmt.Errorf("%w: leaf_hash does not match the event", ErrProofInvalid)
	}
	path, err := parseHashes(p.Path)
	if err != nil {
		return cp, err
	}
	return cp, VerifyLogInclusion(leaf, p.LeafIndex, p.TreeSize, path, cp.Root)
}

func parseHashes(hs []string) ([][32]byte, error) {
	out := make([][32]byte, len(hs))
	for i, s := range hs {
		var err error
		if out[i], err = parseHash(s); err != nil {
			return nil, fmt.Errorf("%w: path[%d]: %v", ErrProofInvalid, i, err)
		}
	}
	return out, nil
}

func hexHashes(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hexHash(h)
	}
	return out
}

// LogCheckpointAt reads checkpoint seq (0: the latest), which must be a format-2 one, and
// verifies its signature against keys (unchecked when keys is empty).
func LogCheckpointAt(ctx context.Context, src *Source, seq uint64, keys []ed25519.PublicKey) (LogCheckpoint, uint64, error) {
	sc, err := src.StoredCheckpoint(ctx, seq)
	if err != nil {
		return LogCheckpoint{}, 0, err
	}
	if sc.Log == nil {
		return LogCheckpoint{}, 0, fmt.Errorf("%w: checkpoint %d; ask for a new one (audit checkpoint --request)", ErrNoLogCheckpoint, sc.Seq)
	}
	cp, err := ParseLogCheckpoint(sc.Log.Note, keys)
	return cp, sc.Seq, err
}

// scanTree reads the stream from position 1 to size into a log tree prepared by watch, calling
// fn for each message. Positions must be contiguous: a tree with a hole proves nothing.
func scanTree(ctx context.Context, src *Source, size uint64, watch func(*LogTree) error, fn func(Message, *LogTree)) (*LogTree, error) {
	tree := NewLogTree()
	if err := watch(tree); err != nil {
		return nil, err
	}
	if size == 0 {
		return tree, nil
	}
	_, err := src.Scan(ctx, Filter{ToPosition: size}, func(m Message) error {
		if m.Position != tree.Size()+1 {
			return fmt.Errorf("%w: position %d is missing from the stream; run audit verify", ErrRootMismatch, tree.Size()+1)
		}
		tree.Append(LogLeafHash(m.Data))
		if fn != nil {
			fn(m, tree)
		}
		return nil
	})
	if err == nil && tree.Size() != size {
		err = fmt.Errorf("%w: the stream ends at position %d, before %d", ErrRootMismatch, tree.Size(), size)
	}
	return tree, err
}

// BuildEventProof proves the message at position included in checkpoint seq (0: the latest):
// it rebuilds the log tree from the stream up to the checkpoint's size, checks its root against
// the signed one, and returns the inclusion proof.
func BuildEventProof(ctx context.Context, src *Source, position, seq uint64, keys []ed25519.PublicKey) (EventProof, error) {
	cp, cpSeq, err := LogCheckpointAt(ctx, src, seq, keys)
	if err != nil {
		return EventProof{}, err
	}
	if position == 0 || position > cp.Size {
		return EventProof{}, fmt.Errorf("%w: position %d, checkpoint %d covers positions 1 to %d", ErrNotCovered, position, cpSeq, cp.Size)
	}
	var data []byte
	tree, err := scanTree(ctx, src, cp.Size, func(t *LogTree) error { return t.WatchInclusion(position-1, cp.Size) },
		func(m Message, _ *LogTree) {
			if m.Position == position {
				data = m.Data
			}
		})
	if err != nil {
		return EventProof{}, err
	}
	if tree.Root() != cp.Root {
		return EventProof{}, fmt.Errorf("%w: the stream up to position %d does not reproduce checkpoint %d's root; run audit verify", ErrRootMismatch, cp.Size, cpSeq)
	}
	path, err := tree.InclusionProof(position - 1)
	if err != nil {
		return EventProof{}, err
	}
	return EventProof{Position: position, LeafIndex: position - 1, TreeSize: cp.Size,
		EventBase64: base64.StdEncoding.EncodeToString(data), LeafHash: hexHash(LogLeafHash(data)),
		Path: hexHashes(path), Root: hexHash(cp.Root), CheckpointSeq: cpSeq, Checkpoint: string(cp.Note)}, nil
}

// LastPositionOf is the position of the account's last event at or before position at.
func LastPositionOf(ctx context.Context, src *Source, accountID string, at uint64) (uint64, error) {
	var last uint64
	if _, err := src.Scan(ctx, Filter{AccountID: accountID, ToPosition: at}, func(m Message) error {
		last = m.Position
		return nil
	}); err != nil {
		return 0, err
	}
	if last == 0 {
		return 0, fmt.Errorf("%w: account %s had no events at position %d", ErrAccountUnknown, accountID, at)
	}
	return last, nil
}

// ConsistencyProof proves that the log tree of Size2 extends the one of Size1: every message
// under Root1 is under Root2, unchanged and in the same order. docs/FORMAT.md specifies it.
type ConsistencyProof struct {
	Size1 uint64 `json:"size1"`
	Size2 uint64 `json:"size2"`
	// Root1 and Root2 are the stream's roots at the two sizes, hex; Path the RFC 9162 proof.
	Root1 string   `json:"root1"`
	Root2 string   `json:"root2"`
	Path  []string `json:"consistency_path"`
}

// Verify checks the proof between root1 and root2 (the signed ones an auditor holds).
func (c ConsistencyProof) Verify(root1, root2 [32]byte) error {
	path, err := parseHashes(c.Path)
	if err != nil {
		return err
	}
	return VerifyLogConsistency(c.Size1, c.Size2, path, root1, root2)
}

// BuildConsistencyProof rebuilds the log tree from the stream up to size2 and returns its roots
// at size1 and size2 and the consistency proof between them.
func BuildConsistencyProof(ctx context.Context, src *Source, size1, size2 uint64) (ConsistencyProof, error) {
	if size1 > size2 {
		return ConsistencyProof{}, fmt.Errorf("%w: size %d is larger than %d", ErrProofInvalid, size1, size2)
	}
	root1 := LogTreeEmptyRoot()
	tree, err := scanTree(ctx, src, size2, func(t *LogTree) error { return t.WatchConsistency(size1, size2) },
		func(m Message, t *LogTree) {
			if m.Position == size1 {
				root1 = t.Root()
			}
		})
	if err != nil {
		return ConsistencyProof{}, err
	}
	path, err := tree.ConsistencyProof(size1)
	if err != nil {
		return ConsistencyProof{}, err
	}
	return ConsistencyProof{Size1: size1, Size2: size2, Root1: hexHash(root1), Root2: hexHash(tree.Root()), Path: hexHashes(path)}, nil
}
