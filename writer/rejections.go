package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
)

// DefaultRejectionsRemembered bounds the rejected commands the writer remembers in full; older
// ones are kept in compact form and read back from the log (idempotency.go, rejcompact.go).
const DefaultRejectionsRemembered = 100_000

// rejection is what the writer remembers of a rejected command, so a retry with the same
// command_id gets the same answer instead of a fresh decision.
type rejection struct {
	accountID string
	bodyHash  string
	err       *ledger.Error
	// pending is true while the rejection is being written to the rejection log.
	pending bool
	// seq is its place in w.idem.order (an id forgotten and rejected again is there twice).
	seq uint64
	// at is where it lies in the rejection log (Position 0: not known, or not written yet).
	at ledger.RejectionAt
}

// rejectRef is one entry of w.idem.order: it still names the remembered rejection only while
// that rejection's seq matches (a forgotten one may have been replaced since).
type rejectRef struct {
	id  string
	seq uint64
}

// RejectionLog stores rejections durably so a retry of a rejected command_id gets the same
// answer after a crash too. Rejections are not events: they changed no account.
type RejectionLog interface {
	// AppendRejections stores the rejections durably and returns where each landed, in order
	// (positions never decrease); after an error none of them may be relied on.
	AppendRejections(ctx context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error)
	// ReadRejections calls fn for each stored rejection from position from on, with where it
	// lies, and revoked for each revocation stored there (RevokeRejections), in log order; it
	// returns the head.
	ReadRejections(ctx context.Context, from uint64, fn func(ledger.Rejection, ledger.RejectionAt), revoked func(ledger.Revocation)) (uint64, error)
	// ReadRejectionAt reads back the rejection stored at a place AppendRejections or
	// ReadRejections named; ledger.ErrNoRecord when the log no longer holds it (past its
	// retention) or never did.
	ReadRejectionAt(ctx context.Context, at ledger.RejectionAt) (ledger.Rejection, error)
	// RevokeRejections stores revocations of rejections that were stored but never answered,
	// after them in the log, so that a later load does not replay them (finishRejections). A
	// reader that predates revocations must skip them.
	RevokeRejections(ctx context.Context, rs []ledger.Revocation) error
	// FirstPosition is the position of the oldest entry the log still holds (the head plus one
	// when it holds none): the rejections below it are gone (past the log's retention), and
	// their compact entries are pruned (rejcompact.go).
	FirstPosition(ctx context.Context) (uint64, error)
}

// pendingReject is a rejection decided in a round, answered once it is in the log and its
// partition's fence is found unmoved after (finishRejections).
type pendingReject struct {
	req *request
	err *ledger.Error
	// rec is the rejection remembered for it (pending until finishRejections).
	rec *rejection
	// part is the account's partition, and fenced says the writer held an ownership record for
	// it when it decided (rejectionFences); set only when the writer has Fences.
	part   int
	fenced bool
	// shared says the account held a marketplace subscription when the rejection was decided,
	// at version: another node may move it away meanwhile (subclaims.go), which no fence shows,
	// so the account's version is read after the write too (movedHolders).
	shared  bool
	version uint64
}

// notePending makes the pendingReject of a rejection decided now on r's account.
func (w *Writer) notePending(r *request, err *ledger.Error, rec *rejection) pendingReject {
	p := pendingReject{req: r, err: err, rec: rec}
	if w.opts.Subscriptions != nil && w.holdsASubscription(r.AccountID) {
		p.shared, p.version = true, w.cache.accounts[r.AccountID].state.Version
	}
	return p
}

// movedHolders reads, after a round's rejections are durable, the version of every account that
// held a subscription when one was decided, and reports (by index) the rejections whose account
// has moved past the version they were decided at: another node appended to it (a subscription
// move), and the rejection may rest on what is no longer so. An account that cannot be read
// counts as moved (its rejection is not answered; the account is re-read).
func movedHolders(ctx context.Context, store ledger.Store, rejects []pendingReject) map[int]bool {
	var moved map[int]bool
	for i, p := range rejects {
		if !p.shared {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, fenceReadTimeout)
		v, err := store.AccountVersion(rctx, p.req.AccountID)
		cancel()
		if err != nil || v != p.version {
			if moved == nil {
				moved = map[int]bool{}
			}
			moved[i] = true
		}
	}
	return moved
}

func rejectionsOf(ps []pendingReject) []ledger.Rejection {
	out := make([]ledger.Rejection, len(ps))
	for i, p := range ps {
		out[i] = ledger.Rejection{CommandID: p.req.CommandID, AccountID: p.req.AccountID, BodyHash: p.req.BodyHash, Err: p.err}
	}
	return out
}

// rejectionFences notes, on the writer goroutine, the fence each rejection was decided under,
// and returns the fences the round must find unmoved once its rejections are durable: one per
// partition (nil without Fences or rejections, and then nothing is read).
func (w *Writer) rejectionFences(rejects []pendingReject) map[int]uint64 {
	if w.opts.Fences == nil || len(rejects) == 0 {
		return nil
	}
	out := make(map[int]uint64, len(rejects))
	for i := range rejects {
		r := &rejects[i]
		var fence uint64
		r.part, fence, r.fenced = w.opts.Fences.Fence(r.req.AccountID)
		if r.fenced {
			out[r.part] = fence
		}
	}
	return out
}

// finishRejections answers a round's rejections: with the rejection once it is durable and its
// partition still this writer's, or with unavailable (and forgotten, so a retry is decided
// again) when the log refused it or the fences could not be read, or with a redirect (and
// forgotten) when the partition moved meanwhile. A rejection forgotten although it is durable is
// revoked in the log (revokeBeside), so that a later load does not replay it either.
//
// Why reading the fence after the write suffices (docs/OPERATIONS.md, "Partitions"): rejections
// live in their own stream, where the append fence does not reach. A node that takes a
// partition over stores its ownership record first and loads the rejection log after that
// write is acknowledged (server/partitions.go, generation: fence, then Writer.Load, which calls
// loadRejections). Our read of the fence heads begins after our rejections are durable, and sees
// every ownership record stored before it began (ledger.Store.FenceHeads). If it still finds our
// own record, any new owner stored its record after our read began, so after our rejection was
// durable, and its load of the log, later still, holds our rejection: it replays our answer to
// a retry rather than deciding afresh. If it finds another, the new owner may have loaded the
// log before our rejection landed; the client is not told our answer, and its retry gets the
// owner's. (A writer of this node that replaces this one under the same ownership record starts
// only once this one has stopped, and reads the log again then: CatchUp.) The lease check after
// it is belt and braces: it cannot see a lease lost while this process was paused.
func (w *Writer) finishRejections(d appendDone) {
	if len(d.rejects) == 0 {
		return
	}
	if d.rejErr == nil && len(d.rejAt) > 0 && d.rejAt[len(d.rejAt)-1].Position > w.idem.logPos {
		w.idem.logPos = d.rejAt[len(d.rejAt)-1].Position
	}
	// The partitions another node fenced are given up before any answer goes out: a client
	// redirected here must not find this writer still claiming them (fence.go).
	w.loseFenced(d.rejMoved)
	// The rejections forgotten after their write succeeded are durable but not answered: they
	// are revoked in the log (revokeBeside), so that a later load does not replay them.
	var revoke []ledger.Revocation
	for i, p := range d.rejects {
		moved := d.rejErr == nil && d.fenceErr == nil && w.moved(d, p)
		if d.rejErr == nil && (d.fenceErr != nil || moved || d.holderMoved[i]) {
			revoke = append(revoke, ledger.Revocation{CommandID: p.req.CommandID, At: d.rejAt[i]})
		}
		switch {
		case d.rejErr != nil:
			w.forgetRejection(p, ledger.Reject(ledger.CodeUnavailable,
				"the rejection could not be recorded (%v); retry with the same command_id", d.rejErr))
		case d.fenceErr != nil:
			w.forgetRejection(p, ledger.Reject(ledger.CodeUnavailable,
				"this node could not confirm it still writes account %s (%v); retry with the same command_id", p.req.AccountID, d.fenceErr))
		case moved:
			// Another node took the partition over (or may have): it decides a retry.
			delete(w.idem.rejected, p.req.CommandID)
			w.redirect(p.req)
		case d.holderMoved[i]:
			// Another node appended to the account (a subscription move): decided again, on the
			// account re-read, when the client retries.
			if a, ok := w.cache.accounts[p.req.AccountID]; ok && !a.foreign {
				a.stale = true
			}
			w.forgetRejection(p, ledger.Reject(ledger.CodeUnavailable,
				"account %s changed (or could not be read) while the command was decided; retry with the same command_id", p.req.AccountID))
		default:
			w.idem.settle(p.req.CommandID, p.rec, d.rejAt[i], w.partitionOf)
			if p.req.Reply != nil {
				p.req.Reply(Result{AccountID: p.req.AccountID, Err: p.err})
			}
		}
	}
	w.revokeBeside(revoke)
}

// moved says p's partition moved to another node (or may have) by the time its rejection was
// durable: the fence read found another's record, or the writer no longer owns the account.
func (w *Writer) moved(d appendDone, p pendingReject) bool {
	return (w.opts.Fences != nil && (!p.fenced || d.rejMoved[p.part])) || !w.stillOwns(p.req)
}

// revokeTimeout bounds writing a round's revocations; it runs on after the writer is told to
// stop, so that a shutdown right after a partition moved does not lose them.
const revokeTimeout = 5 * time.Second

// revokeBeside writes, beside the loop, the revocations of a round's rejections that are durable
// in the log but were not answered, so that a node that loads the log later (a restart, another
// takeover) does not replay them to a retry. Best effort: a revocation that cannot be written
// is logged and counted, and that rejection stays replayable (docs/OPERATIONS.md).
func (w *Writer) revokeBeside(rs []ledger.Revocation) {
	if len(rs) == 0 {
		return
	}
	log, lg := w.opts.Rejections, w.opts.Log
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
		defer cancel()
		err := log.RevokeRejections(ctx, rs)
		if err != nil {
			w.stats.revokeFailed.Add(uint64(len(rs)))
			lg.Warn().Err(err).Int("rejections", len(rs)).Str("first_command_id", rs[0].CommandID).
				Msg("unanswered rejections could not be revoked; a later load may replay them")
		} else {
			w.stats.revoked.Add(uint64(len(rs)))
		}
		return func() []*request { return nil }
	})
}

// forgetRejection answers a rejection that cannot be relied on with err, and forgets it so a
// retry is decided again.
func (w *Writer) forgetRejection(p pendingReject, err *ledger.Error) {
	delete(w.idem.rejected, p.req.CommandID)
	if p.req.Reply != nil {
		p.req.Reply(Result{AccountID: p.req.AccountID, Err: err})
	}
}

// loadRejections reads the rejection log after the snapshot's position into memory.
func (w *Writer) loadRejections(ctx context.Context) error {
	if w.opts.Rejections == nil || w.cache.holdsNone() {
		return nil // a writer that holds no partition remembers no rejection
	}
	head, err := w.opts.Rejections.ReadRejections(ctx, w.idem.logPos+1, func(r ledger.Rejection, at ledger.RejectionAt) {
		if w.opts.Holds != nil && !w.opts.Holds(r.AccountID) {
			return // another partition's: its owner replays it
		}
		// The later of two rejections of one command_id is the one that was sent: an earlier one
		// is in the log only when its round's write failed part-way, and it was then answered
		// unavailable and decided again. (An earlier one pushed into the compact form is shadowed
		// by the later in full, and replaced when that one is compacted.)
		delete(w.idem.rejected, r.CommandID)
		if rj := w.rememberRejection(&request{Request: submit.Request{CommandID: r.CommandID, AccountID: r.AccountID, BodyHash: r.BodyHash}}, r.Err); rj != nil {
			rj.at = at // beyond the bound, compacted with it (remember)
		}
	}, w.idem.revokedAt) // a rejection never answered (finishRejections) is forgotten
	if err == nil {
		w.pruneLoaded(ctx)
	}
	if err != nil {
		return fmt.Errorf("load rejections: %w", err)
	}
	if head > w.idem.logPos {
		w.idem.logPos = head
	}
	w.idem.sinceSnap = 0
	return nil
}

// rememberable says whether a rejection is a business answer about the command (remembered) or
// not: a malformed request (like a validation failure at the edge, it never started executing),
// or an answer about the moment (unavailable, internal, a stale expected_version, a reused key).
// Those are never remembered, so a corrected or later retry is decided again.
func rememberable(r *request, err *ledger.Error) bool {
	if r.internal || r.CommandID == "" || r.BodyHash == "" {
		return false
	}
	switch err.Code {
	case ledger.CodeInvalidArgument, ledger.CodeUnavailable, ledger.CodeInternal, ledger.CodeHistoryBroken,
		ledger.CodeVersionConflict, ledger.CodeIdempotencyKeyReused:
		return false
	}
	return true
}

// rememberRejection records a rejection, evicting the oldest beyond the bound, and returns it
// (nil when it is not remembered).
func (w *Writer) rememberRejection(r *request, err *ledger.Error) *rejection {
	if !rememberable(r, err) {
		return nil
	}
	return w.idem.remember(r, err, w.opts.RejectionsRemembered, w.partitionOf)
}

// remember records a rejection, keeping at most limit in full: the oldest are pushed out first,
// into the compact form where their place in the log is known (partOf gives an account's
// partition, -1 unknown), else forgotten.
func (m *idempotency) remember(r *request, err *ledger.Error, limit int, partOf func(string) int) *rejection {
	if rj, ok := m.rejected[r.CommandID]; ok {
		return rj
	}
	m.orderSeq++
	rj := &rejection{accountID: r.AccountID, bodyHash: r.BodyHash, err: err, seq: m.orderSeq}
	m.rejected[r.CommandID] = rj
	m.sinceSnap++
	m.order = append(m.order, rejectRef{id: r.CommandID, seq: rj.seq})
	for len(m.order) > limit {
		old := m.order[0]
		m.order = m.order[1:]
		if cur, ok := m.rejected[old.id]; ok && cur.seq == old.seq { // not forgotten (and perhaps replaced) since
			delete(m.rejected, old.id)
			m.pushOut(old.id, cur, partOf)
		}
	}
	return rj
}

// replyRejected answers a repeated command_id whose first outcome was a rejection.
func (w *Writer) replyRejected(r *request, rec *rejection) {
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
