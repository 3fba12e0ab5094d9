package writer

import "github.com/creditledger/creditledger/ledger"

// maxMarks bounds the breaks reported by MarkBroken that wait for the writer goroutine; more are
// dropped and counted (Stats.MarksDropped), never waited for.
const maxMarks = 256

// brokenMark is a stored message on an account's subject that the projector could not apply.
type brokenMark struct {
	accountID string
	position  uint64
	reason    string
}

// MarkBroken tells the writer that the message stored at position on the account's subject does
// not continue its history (the projector parked it). The writer refuses the account's next
// commands history_broken, as a load would, unless it holds no such account or has verified its
// stored history past position itself. It never blocks: with maxMarks waiting, the mark is dropped
// and counted; the account's next head-checked append or load still finds the break.
func (w *Writer) MarkBroken(accountID string, position uint64, reason string) {
	select {
	case w.marks <- brokenMark{accountID: accountID, position: position, reason: reason}:
	default:
		w.stats.marksDropped.Add(1)
	}
}

// drainMarks applies the marks waiting, on the writer goroutine; gather calls it before it takes
// queued requests, so a command sent after its account's mark is decided after it.
func (w *Writer) drainMarks() {
	for range maxMarks {
		select {
		case m := <-w.marks:
			w.markBroken(m)
		default:
			return
		}
	}
}

// markBroken marks a held account broken at the reported position (one of a held partition that
// the writer has not seen yet included). The writer's own events and a
// replay of history its load already judged (a break it found, or records it verified) leave it
// as it is, so a repeated or stale mark is harmless. A stale account keeps the mark through its
// re-read unless the re-read verifies past it (replaceAccount).
func (w *Writer) markBroken(m brokenMark) {
	a := w.cache.accounts[m.accountID]
	if a == nil {
		if w.opts.Holds != nil && !w.opts.Holds(m.accountID) {
			return // another node's: its owner's load finds the break
		}
		// Held but never seen: the foreign message is the account's first, and its first
		// command's lone record would carry the fence, not the version check.
		a = &account{state: ledger.NewAccount(m.accountID)}
		w.cache.accounts[m.accountID] = a
	}
	if a.foreign || a.broken != nil || m.position <= a.trusted {
		return
	}
	a.broken = &historyBreak{position: m.position, reason: "the projector could not apply it: " + m.reason}
	w.stats.marked.Add(1)
	w.opts.Log.Error().Str("account_id", m.accountID).Err(a.broken).
		Msg("account history broken (reported by the projector); its commands will be refused (history_broken)")
}
