package writer

import (
	"context"
	"errors"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// The compact form of rejections (idempotency.go): a rejection older than the latest
// RejectionsRemembered is kept as where it lies in the rejection log, and a retry of its
// command_id reads it back from there.

// A rejection entry packs the position of its log message (low 39 bits), its index within the
// message (12 bits: jetstore writes at most 4,096 rejections a message, and at about 150 bytes a
// rejection its 512 KiB limit ends one near 3,500) and its account's partition plus one (high 13
// bits, as a compacted entry: ledger.MaxPartitions is 4,096; 0 is unknown), so a partition
// snapshot takes exactly its own. A rejection out of that range is forgotten when it is pushed
// out of the full records, as every rejection was before they were compacted.
const (
	rejPosBits = 39
	rejPosMask = 1<<rejPosBits - 1
	// rejIndexBits ends where a compacted entry's partition begins, so entryPartition reads both.
	rejIndexBits = compactPartShift - rejPosBits
	rejIndexMask = 1<<rejIndexBits - 1
)

// rejectEntry packs an entry; part is the account's partition, or -1 when unknown.
func rejectEntry(at ledger.RejectionAt, part int) (uint64, bool) {
	if at.Position == 0 || at.Position > rejPosMask || at.Index < 0 || at.Index > rejIndexMask || part < -1 || part > compactPartMax {
		return 0, false
	}
	return at.Position | uint64(at.Index)<<rejPosBits | uint64(part+1)<<compactPartShift, true
}

// splitRejectEntry is where an entry's rejection lies in the log.
func splitRejectEntry(e uint64) ledger.RejectionAt {
	return ledger.RejectionAt{Position: e & rejPosMask, Index: int(e >> rejPosBits & rejIndexMask)}
}

// compactRejection moves a rejection into the compact form under its command_id's key, where a
// later rejection of one command_id replaces an earlier one (a collision of two ids' keys, one
// in 2^64, costs the other its replay: it is decided afresh). It reports false, changing
// nothing, for a rejection not answered yet or whose place is unknown or out of range.
func (m *idempotency) compactRejection(id string, rj *rejection, partOf func(string) int) bool {
	if rj.pending {
		return false
	}
	entry, ok := rejectEntry(rj.at, partOf(rj.accountID))
	if !ok {
		return false
	}
	m.rejSet(commandKey(id), entry)
	return true
}

// pushOut handles a rejection the bound pushed out of the full records: compacted where it can
// be; else forgotten, together with an older compact rejection of the id (a later rejection
// wins: the earlier must not come back). One still being written is compacted once answered
// (settle).
func (m *idempotency) pushOut(id string, rj *rejection, partOf func(string) int) {
	if !m.compactRejection(id, rj, partOf) {
		m.rejDelete(commandKey(id))
	}
}

// settle notes that a round's rejection rec of id is durable at at and answered; pushed out of
// the full records meanwhile, it goes straight into the compact form.
func (m *idempotency) settle(id string, rec *rejection, at ledger.RejectionAt, partOf func(string) int) {
	rec.pending, rec.at = false, at
	if _, ok := m.rejected[id]; !ok { // (a newer one of the id, in full, shadows it: left alone)
		m.compactRejection(id, rec, partOf)
	}
}

// compactRejections moves every answered rejection whose place in the log is known into the
// compact form (at a snapshot); the others stay in full.
func (m *idempotency) compactRejections(partOf func(string) int) {
	live := m.order[:0]
	for _, ref := range m.order {
		rj, ok := m.rejected[ref.id]
		if !ok || rj.seq != ref.seq {
			continue // forgotten (and perhaps replaced) since
		}
		if m.compactRejection(ref.id, rj, partOf) {
			delete(m.rejected, ref.id)
			continue
		}
		live = append(live, ref)
	}
	clear(m.order[len(live):])
	m.order = live
}

// replayRejection answers r from its compact rejection, read back from the rejection log beside
// the loop (like an accepted command's, beside.go): the same account and body are answered the
// stored rejection, another the reuse of the key. A miss (the entry's place holds another
// command's rejection, a hash collision, or is gone past the log's retention) puts r back to be
// decided afresh, as a new command.
func (w *Writer) replayRejection(r *request, entry uint64) {
	log, at, id := w.opts.Rejections, splitRejectEntry(entry), r.CommandID
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, readBackTimeout)
		defer cancel()
		rj, err := log.ReadRejectionAt(ctx, at)
		return func() []*request {
			switch {
			case errors.Is(err, ledger.ErrNoRecord) || (err == nil && rj.CommandID != id):
				r.notRejCompact = true
				return []*request{r}
			case err != nil:
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "command_id %s: its earlier rejection could not be read back: %v", id, err))
			case rj.Err == nil:
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "command_id %s: its earlier rejection was read back without an error", id))
			default:
				w.stats.rejReadBack.Add(1)
				w.replyRejected(r, &rejection{accountID: rj.AccountID, bodyHash: rj.BodyHash, err: rj.Err})
			}
			return nil
		}
	})
}

// firstPositionTimeout bounds the read of the rejection log's first position that prunes the
// compact rejections; a prune that fails waits for the next snapshot.
const firstPositionTimeout = 10 * time.Second

// pruneRejections drops the compact rejections whose message lies below first, the rejection
// log's oldest position: the log dropped them (past its retention), so a retry would be decided
// afresh anyway, and the entry only costs memory. It returns how many it dropped. While a
// snapshot's encoder reads them (snapcapture.go) the prune waits for the thaw.
func (m *idempotency) pruneRejections(first uint64) int {
	if m.rejFrozen {
		m.pruneBelow = max(m.pruneBelow, first)
		return 0
	}
	n := 0
	for k, e := range m.rejCompact {
		if splitRejectEntry(e).Position < first {
			delete(m.rejCompact, k)
			n++
		}
	}
	return n
}

// pruneBeside reads the rejection log's first position beside the loop (a snapshot calls it)
// and then drops the compact rejections below it, on the writer goroutine: a map walk. One read
// at a time; none once the writer is stopping.
func (w *Writer) pruneBeside() {
	log := w.opts.Rejections
	if log == nil || w.snap.pruning || len(w.idem.rejCompact) == 0 || w.side.ctx.Err() != nil {
		return
	}
	w.snap.pruning = true
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, firstPositionTimeout)
		defer cancel()
		first, err := log.FirstPosition(ctx)
		return func() []*request {
			w.snap.pruning = false
			if err != nil {
				w.opts.Log.Warn().Err(err).Msg("compact rejections not pruned: the rejection log's first position could not be read")
				return nil
			}
			w.stats.rejPruned.Add(uint64(w.idem.pruneRejections(first)))
			return nil
		}
	})
}

// pruneLoaded drops the compact rejections the log no longer holds at the end of a load (before
// Run: the read may be made in place). A failed read prunes nothing: the next snapshot does.
func (w *Writer) pruneLoaded(ctx context.Context) {
	if len(w.idem.rejCompact) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, firstPositionTimeout)
	defer cancel()
	first, err := w.opts.Rejections.FirstPosition(ctx)
	if err != nil {
		w.opts.Log.Warn().Err(err).Msg("compact rejections not pruned at load: the rejection log's first position could not be read")
		return
	}
	w.stats.rejPruned.Add(uint64(w.idem.pruneRejections(first)))
}

// revokedAt forgets, at a load, the remembered rejection of rv's command_id if it is the one at
// rv's place, in full or compact form: it was stored but never answered (finishRejections). A
// later rejection of the id, elsewhere in the log, is another decision and stays.
func (m *idempotency) revokedAt(rv ledger.Revocation) {
	if rj, ok := m.rejected[rv.CommandID]; ok && !rj.pending && rj.at == rv.At {
		delete(m.rejected, rv.CommandID)
	}
	k := commandKey(rv.CommandID)
	if e, ok := m.rejGet(k); ok && splitRejectEntry(e) == rv.At {
		m.rejDelete(k)
	}
}
