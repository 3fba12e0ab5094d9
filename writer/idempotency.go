package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Idempotency records of accepted commands, in two forms:
//
//   - w.commands holds full records (account, body hash, result) of the commands accepted or
//     replayed since the last snapshot: a retry of a recent command, the usual case (a reply
//     lost in transit), is answered from memory.
//   - w.compacted maps a 64-bit hash of each older command_id to the stream position of its
//     first event and its number of events (compactEntry): 16 bytes a command instead of about
//     250, and a snapshot section that restores at memory speed instead of decoding a million
//     records. A retry of such a command reads its events back from the stream (a direct get
//     per event, about a millisecond each, beside the writer goroutine (beside.go): most commands
//     have one to three events, and readBackTimeout bounds the rest), which also confirms the command_id:
//     a hash collision is found there and treated as a miss.
//
// Every snapshot (and the end of a load) moves the full records into the compact form; a
// record whose hash is already taken by another command stays full.

// readBackTimeout bounds reading one command's events back; past it the retry is answered
// unavailable (and may be retried) rather than holding up every other command.
const readBackTimeout = 2 * time.Second

// A compacted entry packs the position of a command's first event (low 48 bits) with its number
// of events (high 16 bits), so a read-back reads exactly those.
const (
	compactPosBits = 48
	compactPosMask = 1<<compactPosBits - 1
)

func compactEntry(first uint64, events int) (uint64, bool) {
	if first > compactPosMask || events <= 0 || events >= 1<<(64-compactPosBits) {
		return 0, false
	}
	return first | uint64(events)<<compactPosBits, true
}

func splitEntry(e uint64) (first uint64, events int) {
	return e & compactPosMask, int(e >> compactPosBits)
}

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

// accepted looks up the idempotency record of an accepted command: the full record when it is
// in memory, else its compact entry (compact true), whose reply must be read back from the stream
// (readBack, beside the loop). notCompacted skips the compact form (a read-back found the entry
// to be another command's).
func (w *Writer) accepted(id string, notCompacted bool) (rec *commandRecord, entry uint64, compact bool) {
	if rec, ok := w.commands[id]; ok {
		return rec, 0, false
	}
	if notCompacted {
		return nil, 0, false
	}
	entry, compact = w.compacted[commandKey(id)]
	return nil, entry, compact
}

// readRecord rebuilds a command's record from its n events, starting at the position of its
// first; nil when that event belongs to another command (a hash collision). It touches no writer
// state: it runs beside the writer goroutine.
func readRecord(ctx context.Context, store ledger.Store, id string, pos uint64, n int) (*commandRecord, error) {
	var rec *commandRecord
	for i := range n {
		p := pos + uint64(i)
		r, err := store.ReadAt(ctx, p)
		if err != nil {
			return nil, err
		}
		ev, err := events.Decode(r.Data)
		if err != nil {
			return nil, fmt.Errorf("position %d: %w", p, err)
		}
		if rec == nil && ev.CommandID != id {
			return nil, nil // a collision: the position holds another command
		}
		if ev.CommandID != id || r.AccountID != ev.AccountID || (rec != nil && r.AccountID != rec.accountID) {
			return nil, fmt.Errorf("position %d: expected event %d of command %s, found %s's", p, i+1, id, ev.CommandID)
		}
		if rec == nil {
			rec = &commandRecord{accountID: r.AccountID, bodyHash: ev.CommandHash, result: Result{AccountID: r.AccountID}}
		}
		rec.result.Version, rec.result.Position = ev.Version, p
		rec.result.Events = append(rec.result.Events, EventRef{Type: ev.Type, Version: ev.Version, Position: p})
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
		entry, ok := compactEntry(rec.result.Events[0].Position, len(rec.result.Events))
		if !ok {
			continue // out of the compact form's range: kept in full
		}
		k := commandKey(id)
		if at, taken := w.compacted[k]; taken {
			if first, _ := splitEntry(at); first != rec.result.Events[0].Position {
				continue // another command has this hash: keep this one in full
			}
		}
		w.compacted[k] = entry
		delete(w.commands, id)
	}
}
