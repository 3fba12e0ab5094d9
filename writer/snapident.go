package writer

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// A snapshot belongs to one history of the stream. Every snapshot object this build writes that
// describes the stream up to a head H (a whole snapshot, a partition's, a partition's id list)
// carries the fingerprint of the message the store held at H when it was taken
// (ledger.Store.Fingerprints). A load reads the store's fingerprint at each distinct head of the
// snapshots it fetched, before it restores any, and restores none whose fingerprint differs or
// whose head holds no message: the stream was deleted and created again (or replaced by another
// deployment's), and the snapshot's accounts, ids and idempotency records describe a history the
// stream does not hold. Such a snapshot is logged and passed over, as a missing one is: the
// partitions it covered are read from the stream's start (or from the whole snapshot, if that
// one matches), and a new snapshot is taken soon, which replaces it. Each snapshot is judged on
// its own, so partition snapshots saved since the stream was recreated are still restored.
//
// A near load (Preload) reads the fingerprints without waiting for the leader: one the copy it
// read does not hold yet is ErrBehind, not another history (its load from the leader decides).
//
// A snapshot written before fingerprints (an older build's) has none and is restored unchecked,
// as it always was; the stream being behind its head is still found after the read (load).

// snapStamp ends the gob section of every snapshot this build writes (snapcodec.go), after the
// accounts: an older build decodes the accounts and never reads further, and a snapshot whose
// section ends before it (an older build's) decodes with none.
type snapStamp struct {
	// Fingerprint is the store's fingerprint of the message at the snapshot's head (nil at head 0).
	Fingerprint []byte
}

// fingerprintTimeout bounds a read of fingerprints: a snapshot's at its save, a load's check.
const fingerprintTimeout = 10 * time.Second

// headFingerprint reads the fingerprint of the message at head for a snapshot taken there (nil
// at head 0: nothing to identify). A store that holds no message at head is an error: the
// snapshot is not saved, rather than saved unchecked.
func headFingerprint(ctx context.Context, store ledger.Store, head uint64) ([]byte, error) {
	if head == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, fingerprintTimeout)
	defer cancel()
	fps, err := store.Fingerprints(ctx, []uint64{head})
	if err != nil {
		return nil, fmt.Errorf("fingerprint of the message at the snapshot's head %d: %w", head, err)
	}
	if len(fps) != 1 || fps[0] == nil {
		return nil, fmt.Errorf("the store holds no message at the snapshot's head %d", head)
	}
	return fps[0], nil
}

// stamped is one fetched snapshot object as the load's check sees it.
type stamped struct {
	name        string
	head        uint64
	fingerprint []byte
}

// checked reports whether the object can be checked: it has a fingerprint (an older build's has
// none) and a head (a snapshot of an empty stream holds nothing of any history).
func (s stamped) checked() bool { return s.head > 0 && len(s.fingerprint) > 0 }

// otherHistory reports, for each of snaps, whether it was taken on another history than the
// store holds, and logs each such one. The store's fingerprints are read once per distinct head,
// in one call. near reads them without waiting for the leader (ledger.NearReader): a head the copy
// read does not hold is then ErrBehind.
func (w *Writer) otherHistory(ctx context.Context, near bool, snaps []stamped) ([]bool, error) {
	out := make([]bool, len(snaps))
	var heads []uint64
	seen := map[uint64]bool{}
	for _, s := range snaps {
		if s.checked() && !seen[s.head] {
			seen[s.head] = true
			heads = append(heads, s.head)
		}
	}
	if len(heads) == 0 {
		return out, nil
	}
	read := w.opts.Store.Fingerprints
	nr, replicas := w.opts.Store.(ledger.NearReader)
	near = near && replicas
	if near {
		read = nr.FingerprintsNear
	}
	ctx, cancel := context.WithTimeout(ctx, fingerprintTimeout)
	defer cancel()
	fps, err := read(ctx, heads)
	if err != nil {
		return nil, fmt.Errorf("fingerprints at the snapshots' heads: %w", err)
	}
	if len(fps) != len(heads) {
		return nil, fmt.Errorf("fingerprints at the snapshots' heads: %d answers for %d positions", len(fps), len(heads))
	}
	at := make(map[uint64][]byte, len(heads))
	for i, h := range heads {
		at[h] = fps[i]
	}
	for i, s := range snaps {
		if !s.checked() {
			continue
		}
		got := at[s.head]
		if got == nil && near {
			return nil, fmt.Errorf("the replica read holds no message at snapshot %s's head %d: %w", s.name, s.head, ErrBehind)
		}
		if bytes.Equal(got, s.fingerprint) {
			continue
		}
		out[i] = true
		reason := "another message is at its head"
		if got == nil {
			reason = "no message is at its head"
		}
		w.opts.Log.Warn().Str("snapshot", s.name).Uint64("position", s.head).Str("reason", reason).
			Msg("snapshot belongs to another history of the stream; not restored")
	}
	return out, nil
}

// stamped is the snapshot as the load's check of its history sees it.
func (st *snapState) stamped() stamped {
	return stamped{name: st.name, head: st.head, fingerprint: st.fingerprint}
}

// fetchWholeOf is fetchWhole, passing over a snapshot taken on another history than the store
// holds (near: as Preload reads).
func (w *Writer) fetchWholeOf(ctx context.Context, near bool) (*snapState, error) {
	st := w.fetchWhole(ctx)
	if st == nil {
		return nil, nil
	}
	other, err := w.otherHistory(ctx, near, []stamped{st.stamped()})
	if err != nil {
		return nil, err
	}
	if other[0] {
		w.snap.soon = true // replace it
		return nil, nil
	}
	return st, nil
}

// passOverOtherHistory drops from src the partition snapshots and id lists taken on another
// history than the store holds; their partitions are then loaded as if they had
// none (from the whole snapshot, or the stream's start), and snapshotted soon.
func (w *Writer) passOverOtherHistory(ctx context.Context, near bool, src *partSources) error {
	var snaps []stamped
	var own, ids []int
	for p, st := range src.own {
		snaps, own = append(snaps, st.stamped()), append(own, p)
	}
	for p, l := range src.ids {
		snaps, ids = append(snaps, stamped{name: partitionIDsName(p), head: l.head, fingerprint: l.fingerprint}), append(ids, p)
	}
	other, err := w.otherHistory(ctx, near, snaps)
	if err != nil {
		return err
	}
	for i, p := range own {
		if other[i] {
			delete(src.own, p)
			w.snap.soon = true
		}
	}
	for i, p := range ids {
		if other[len(own)+i] {
			delete(src.ids, p)
		}
	}
	return nil
}
