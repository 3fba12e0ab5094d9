package writer

import (
	"github.com/creditledger/creditledger/ledger"
)

// DefaultRejectionsRemembered bounds the rejected commands the writer remembers.
const DefaultRejectionsRemembered = 100_000

// rejection is what the writer remembers of a rejected command, so a retry with the same
// command_id gets the same answer instead of a fresh decision.
type rejection struct {
	accountID string
	bodyHash  string
	err       *ledger.Error
}

// rememberable says whether a rejection is a business answer about the command (remembered) or
// not: a malformed request (like a validation failure at the edge, it never started executing),
// or an answer about the moment (unavailable, internal, a stale expected_version, a reused key).
// Those are never remembered, so a corrected or later retry is decided again.
func rememberable(r *Request, err *ledger.Error) bool {
	if r.internal || r.CommandID == "" || r.BodyHash == "" {
		return false
	}
	switch err.Code {
	case ledger.CodeInvalidArgument, ledger.CodeUnavailable, ledger.CodeInternal, ledger.CodeVersionConflict, ledger.CodeIdempotencyKeyReused:
		return false
	}
	return true
}

// rememberRejection records a rejection, evicting the oldest beyond the bound.
func (w *Writer) rememberRejection(r *Request, err *ledger.Error) {
	if !rememberable(r, err) {
		return
	}
	if _, ok := w.rejections[r.CommandID]; ok {
		return
	}
	w.rejections[r.CommandID] = &rejection{accountID: r.AccountID, bodyHash: r.BodyHash, err: err}
	w.rejectedSinceSnap++
	w.rejectOrder = append(w.rejectOrder, r.CommandID)
	if len(w.rejectOrder) > w.opts.RejectionsRemembered {
		delete(w.rejections, w.rejectOrder[0])
		w.rejectOrder = w.rejectOrder[1:]
	}
}

// replyRejected answers a repeated command_id whose first outcome was a rejection.
func (w *Writer) replyRejected(r *Request, rec *rejection) {
	if rec.accountID != r.AccountID || rec.bodyHash != r.BodyHash {
		w.reject(r, ledger.Reject(ledger.CodeIdempotencyKeyReused,
			"command_id %s was already used with a different body", r.CommandID))
		return
	}
	w.stats.replayed.Add(1)
	if r.Reply != nil {
		r.Reply(Result{AccountID: r.AccountID, Err: rec.err, Replayed: true})
	}
}
