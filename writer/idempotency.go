package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// idempotency is what the writer remembers of the commands it answered, so a retry with the same
// command_id gets the first answer: one lookup says whether the id was accepted or rejected.
//
// Accepted commands are remembered in two forms:
//
//   - accepted holds full records (account, body hash, result) of the commands accepted or
//     replayed since the last snapshot: a retry of a recent command, the usual case (a reply
//     lost in transit), is answered from memory.
//   - compacted maps a 64-bit hash of each older command_id to the stream position of its first
//     event and its number of events (compactEntry): 16 bytes a command instead of about 250,
//     and a snapshot section that restores at memory speed instead of decoding a million
//     records. A retry of such a command reads its events back from the stream (a direct get
//     per event, about a millisecond each, beside the writer goroutine (beside.go): most commands
//     have one to three events, and readBackTimeout bounds the rest), which also confirms the
//     command_id: a hash collision is found there and treated as a miss.
//
// Every snapshot (and the end of a load) moves the full records into the compact form; a record
// whose hash is already taken by another command stays full.
//
// Business rejections (rejections.go) are durable in the rejection log (up to logPos: kept for
// its retention, 30 days in jetstore) and remembered in two forms too, the same way:
//
//   - rejected holds full records (account, body hash, error), at most
//     Options.RejectionsRemembered of them: the latest.
//   - rejCompact maps commandKey of each older rejected command_id to where its rejection lies
//     in the log (rejectEntry: the message's position, the index within it, the partition): a
//     rejection moves there when the bound pushes it out of rejected, and at every snapshot. A
//     retry of such a command reads the rejection back from the log beside the writer goroutine
//     (replayRejection in beside.go), which confirms the command_id: a hash collision, or a
//     message gone past the log's retention, is a miss, and the command is decided afresh. The
//     entries whose message the log has dropped are pruned at each snapshot and at the end of a
//     load (pruneBeside, pruneLoaded), so the map holds about the log's retention.
//
// A rejection enters the compact form only once it has been answered (finishRejections) or read
// from the log at a load: one answered unavailable or redirected never does, and is revoked in
// the log so that a later load forgets it too (revokeBeside, revokedAt). A rejection whose
// place in the log is unknown (one decided without a log, or restored from a snapshot written
// before rejections were compacted) is forgotten when the bound pushes it out. Lookups go
// accepted, compacted, rejected, rejCompact: an accepted command beats a rejection, and a newer
// rejection of one command_id (in full) shadows an older compact one, and replaces it when it
// is compacted in turn.
type idempotency struct {
	accepted   map[string]*commandRecord
	compacted  map[uint64]uint64
	rejected   map[string]*rejection
	rejCompact map[uint64]uint64
	// order lists the rejections remembered, oldest first; orderSeq numbers them.
	order    []rejectRef
	orderSeq uint64
	// sinceSnap counts rejections remembered since the last snapshot.
	sinceSnap int
	// logPos is the rejection log position the remembered rejections reflect.
	logPos uint64
	// While a snapshot's encoder reads rejCompact beside the writer goroutine (snapcapture.go),
	// rejFrozen is set: changes go to rejOver (0: deleted) and a prune waits, below pruneBelow.
	rejFrozen  bool
	rejOver    map[uint64]uint64
	pruneBelow uint64
}

// seen is what a lookup finds of a command_id: nothing (all zero), an accepted command in full,
// an accepted command in compact form (entry, to be read back), or a rejection (pending while it
// is being written to the log).
// A rejection in compact form is rejEntry, with rejCompact set.
type seen struct {
	accepted   *commandRecord
	entry      uint64
	compact    bool
	rejected   *rejection
	rejEntry   uint64
	rejCompact bool
}

// lookup finds what is remembered of id. skipAccepted and skipRejected skip the compact forms (a
// read-back found the entry to be another command's, or gone).
func (m *idempotency) lookup(id string, skipAccepted, skipRejected bool) seen {
	if rec, ok := m.accepted[id]; ok {
		return seen{accepted: rec}
	}
	var key uint64
	if !skipAccepted || !skipRejected {
		key = commandKey(id)
	}
	if !skipAccepted {
		if entry, ok := m.compacted[key]; ok {
			return seen{entry: entry, compact: true}
		}
	}
	if rj, ok := m.rejected[id]; ok {
		return seen{rejected: rj}
	}
	if !skipRejected {
		if entry, ok := m.rejGet(key); ok {
			return seen{rejEntry: entry, rejCompact: true}
		}
	}
	return seen{}
}

// readBackTimeout bounds reading one command's events back; past it the retry is answered
// unavailable (and may be retried) rather than holding up every other command.
const readBackTimeout = 2 * time.Second

// A compacted entry packs the position of a command's first event (low 41 bits), its number of
// events (10 bits: ledger.MaxEventsPerCommand is 1000) and its account's partition plus one (high
// 13 bits; 0: unknown, an entry read from a v4 snapshot), so a read-back reads exactly those
// events and a partition snapshot (partsnap.go) takes exactly its partition's entries. A command
// out of that range keeps its full record.
const (
	compactPosBits   = 41
	compactPosMask   = 1<<compactPosBits - 1
	compactCountBits = 10
	compactCountMask = 1<<compactCountBits - 1
	compactPartShift = compactPosBits + compactCountBits
	compactPartMax   = 1<<(64-compactPartShift) - 2 // the largest partition an entry can name
)

// compactEntry packs an entry; part is the account's partition, or -1 when unknown.
func compactEntry(first uint64, events int, part int) (uint64, bool) {
	if first > compactPosMask || events <= 0 || events > compactCountMask || part < -1 || part > compactPartMax {
		return 0, false
	}
	return first | uint64(events)<<compactPosBits | uint64(part+1)<<compactPartShift, true
}

func splitEntry(e uint64) (first uint64, events int) {
	return e & compactPosMask, int(e >> compactPosBits & compactCountMask)
}

// entryPartition is the partition an entry names (ok false: unknown).
func entryPartition(e uint64) (part int, ok bool) {
	v := int(e >> compactPartShift)
	return v - 1, v != 0
}

// fromV4Entry converts an entry of a v4 snapshot (first position in 48 bits, event count in the
// high 16, no partition) to the current form, with an unknown partition.
func fromV4Entry(e uint64) (uint64, bool) {
	return compactEntry(e&(1<<48-1), int(e>>48), -1)
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

// compactCommands moves the full records of accepted commands, and of answered rejections whose
// place in the log is known (rejcompact.go), into the compact forms.
func (w *Writer) compactCommands() {
	w.idem.compact(w.partitionOf)
	w.idem.compactRejections(w.partitionOf)
}

// compact moves the full records of accepted commands into the compact form; partOf gives an
// account's partition (-1: unknown).
func (m *idempotency) compact(partOf func(accountID string) int) {
	if m.compacted == nil {
		m.compacted = make(map[uint64]uint64, len(m.accepted))
	}
	for id, rec := range m.accepted {
		if len(rec.result.Events) == 0 {
			continue
		}
		entry, ok := compactEntry(rec.result.Events[0].Position, len(rec.result.Events), partOf(rec.accountID))
		if !ok {
			continue // out of the compact form's range: kept in full
		}
		k := commandKey(id)
		if at, taken := m.compacted[k]; taken {
			if first, _ := splitEntry(at); first != rec.result.Events[0].Position {
				continue // another command has this hash: keep this one in full
			}
		}
		m.compacted[k] = entry
		delete(m.accepted, id)
	}
}
