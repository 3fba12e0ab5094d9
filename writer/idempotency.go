package writer

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Idempotency records of accepted commands, in two forms:
//
//   - w.commands holds full records (account, body hash, result) of the commands accepted or
//     replayed since the last snapshot: a retry of a recent command, the usual case (a reply
//     lost in transit), is answered from memory.
//   - w.compacted maps a 64-bit hash of each older command_id to the stream position of its
//     first event: 16 bytes a command instead of about 250, and a snapshot section that restores
//     at memory speed instead of decoding a million records. A retry of such a command reads its
//     events back from the stream (a direct get per event, about a millisecond), which also
//     confirms the command_id: a hash collision is found there and treated as a miss.
//
// Every snapshot (and the end of a load) moves the full records into the compact form; a
// record whose hash is already taken by another command stays full.

// commandKey is a stable 64-bit FNV-1a hash of a command id; it is stored in snapshots, so it
// must never change.
func commandKey(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// recorded returns the idempotency record of an accepted command, or nil if there is none.
func (w *Writer) recorded(ctx context.Context, id string) (*commandRecord, error) {
	if rec, ok := w.commands[id]; ok {
		return rec, nil
	}
	pos, ok := w.compacted[commandKey(id)]
	if !ok {
		return nil, nil
	}
	rec, err := w.readRecord(ctx, id, pos)
	if err != nil {
		return nil, ledger.Reject(ledger.CodeUnavailable, "command_id %s: its earlier outcome could not be read back: %v", id, err)
	}
	return rec, nil
}

// readRecord rebuilds a command's record from its events, starting at the position of its
// first; nil when that event belongs to another command (a hash collision).
func (w *Writer) readRecord(ctx context.Context, id string, pos uint64) (*commandRecord, error) {
	var rec *commandRecord
	for p := pos; p < pos+ledger.MaxEventsPerCommand; p++ {
		r, err := w.opts.Store.ReadAt(ctx, p)
		if errors.Is(err, ledger.ErrNoRecord) && rec != nil {
			break // the command's last event is the stream's last
		}
		if err != nil {
			return nil, err
		}
		ev, err := events.Decode(r.Data)
		if err != nil {
			return nil, fmt.Errorf("position %d: %w", p, err)
		}
		if ev.CommandID != id || (rec != nil && r.AccountID != rec.accountID) {
			break // a collision (first event) or the next command (later ones)
		}
		if rec == nil {
			rec = &commandRecord{accountID: r.AccountID, bodyHash: ev.CommandHash, result: Result{AccountID: r.AccountID}}
		}
		rec.result.Version, rec.result.Position = ev.Version, p
		rec.result.Events = append(rec.result.Events, EventRef{Type: ev.Type, Version: ev.Version, Position: p})
	}
	if rec != nil {
		w.stats.readBack.Add(1)
	}
	return rec, nil
}

// compactCommands moves the full records into the compact form.
func (w *Writer) compactCommands() {
	if w.compacted == nil {
		w.compacted = make(map[uint64]uint64, len(w.commands))
	}
	for id, rec := range w.commands {
		if len(rec.result.Events) == 0 {
			continue
		}
		first := rec.result.Events[0].Position
		k := commandKey(id)
		if at, taken := w.compacted[k]; taken && at != first {
			continue // another command has this hash: keep this one in full
		}
		w.compacted[k] = first
		delete(w.commands, id)
	}
}
