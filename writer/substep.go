package writer

import (
	"context"
	"errors"

	"github.com/creditledger/creditledger/ledger"
)

// The store I/O of a subscription link or unlink (subclaims.go) runs beside the writer goroutine
// (side.go), one round trip per side job: the claim read, each account read back (a holder this
// writer does not own, a history followed), the claim write. The request is held meanwhile, and
// so are its account and its subscription (subHeld): their other commands wait, every other
// account goes on. Each result is kept on the request (subStep) and the request is planned
// again from the start, on the writer goroutine, with what it has read so far; the first
// step it has no result for starts the next job.
//
// A result is used only while what it relied on is unchanged: an account read back is used
// while the writer holds the same copy of the account (not re-read, dropped, forgotten or
// appended to), the same ownership of it, and no append to an account of another partition has
// landed; otherwise it is read again. The claim read is kept for the whole step: no other link or
// unlink of the subscription on this writer runs meanwhile (subHeld), and a claim another node
// moved fails the claim write's revision check, as it did when the read and the write were one
// call (the link is answered unavailable; its retry reads the claim again).

// maxStepJobs bounds the side jobs one link or unlink starts (the reads a lookup makes are
// bounded by maxMoveHops; the rest are reads redone because an account changed meanwhile).
const maxStepJobs = 48

// subStep is what one link or unlink of subscription id has read and written so far.
type subStep struct {
	id string
	// claim is the claim as read (nil: not read yet).
	claim *SubscriptionClaim
	// reads are the accounts read back, by id.
	reads map[string]*accountRead
	// wrote is the claim a link wrote (its Previous the holder it moves the subscription from,
	// Revision the new one); released says an unlink cleared the claim.
	wrote    *SubscriptionClaim
	released bool
	jobs     int
}

// accountRead is an account's stored records as read for a step, with what the writer held of
// the account when the read started.
type accountRead struct {
	recs       []ledger.Record
	acct       *account
	head       uint64
	owned      bool
	foreignGen uint64
	// mine is the foreign copy this step built from recs (installForeign): not a change.
	mine *account
	// applied says a copy this writer holds was replaced from recs (acct, head: the new copy).
	applied bool
}

// beginStep starts (or continues) r's subscription step: errDefer while another request's step
// holds the subscription or r's account.
func (w *Writer) beginStep(r *request, id string) (*subStep, error) {
	if r.sub != nil && r.sub.id == id {
		return r.sub, nil
	}
	key := subscriptionKey(id)
	if q := w.subHeld[key]; q != nil && q != r {
		return nil, errDefer
	}
	if q := w.subHeld[r.AccountID]; q != nil && q != r {
		return nil, errDefer
	}
	w.endStep(r)
	r.sub = &subStep{id: id, reads: map[string]*accountRead{}}
	w.subHeld[key], w.subHeld[r.AccountID] = r, r
	return r.sub, nil
}

// endStep forgets r's step and lets the commands it held go on: once r is planned (its append
// holds what it needs from then on: its reservations and busy accounts, inflight.go) or answered.
func (w *Writer) endStep(r *request) {
	s := r.sub
	if s == nil {
		return
	}
	r.sub = nil
	for _, k := range []string{subscriptionKey(s.id), r.AccountID} {
		if w.subHeld[k] == r {
			delete(w.subHeld, k)
		}
	}
}

// heldByStep reports whether another request's subscription step holds r's account.
func (w *Writer) heldByStep(r *request) bool {
	if len(w.subHeld) == 0 {
		return false
	}
	q := w.subHeld[r.AccountID]
	return q != nil && q != r
}

// stepJob counts one more side job for r's step; past maxStepJobs the step ends unavailable.
func (w *Writer) stepJob(r *request) error {
	if r.sub.jobs++; r.sub.jobs > maxStepJobs {
		return ledger.Reject(ledger.CodeUnavailable, "subscription %s: its claim and holders kept changing while it was linked; retry with the same command_id", r.sub.id)
	}
	return nil
}

// stepClaim returns the claim r's step read, or starts its read beside the loop (errHeld).
func (w *Writer) stepClaim(r *request) (SubscriptionClaim, error) {
	s := r.sub
	if s.claim != nil {
		return *s.claim, nil
	}
	if err := w.stepJob(r); err != nil {
		return SubscriptionClaim{}, err
	}
	subs, id := w.opts.Subscriptions, s.id
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		c, err := subs.Subscription(ctx, id)
		cancel()
		return func() []*request {
			if err != nil {
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "reading the claim of subscription %s: %v; retry with the same command_id", id, err))
				return nil
			}
			s.claim = &c
			return []*request{r}
		}
	})
	return SubscriptionClaim{}, errHeld
}

// stepRead returns the account's stored records as r's step read them, while still valid, or
// starts the read beside the loop (errHeld).
func (w *Writer) stepRead(r *request, accountID string) (*accountRead, error) {
	s := r.sub
	if e := s.reads[accountID]; e != nil && w.readValid(accountID, e) {
		return e, nil
	}
	delete(s.reads, accountID)
	if err := w.stepJob(r); err != nil {
		return nil, err
	}
	e := &accountRead{acct: w.cache.accounts[accountID], owned: w.owns(accountID), foreignGen: w.foreignAppends}
	if e.acct != nil {
		e.head = e.acct.head
	}
	store := w.opts.Store
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		recs, err := store.ReadAccount(ctx, accountID, 0)
		cancel()
		return func() []*request {
			if err != nil {
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "reading account %s: %v; retry with the same command_id", accountID, err))
				return nil
			}
			e.recs = recs
			s.reads[accountID] = e
			return []*request{r}
		}
	})
	return nil, errHeld
}

// readValid reports whether nothing a read relied on changed since it started: the writer holds
// the same copy of the account (or the foreign copy the step built from it) at the same head,
// owns it as it did, and appended to no account of another partition.
func (w *Writer) readValid(accountID string, e *accountRead) bool {
	cur := w.cache.accounts[accountID]
	switch {
	case cur == e.acct:
	case cur != nil && cur == e.mine:
		return w.owns(accountID) == e.owned && w.foreignAppends == e.foreignGen
	default:
		return false
	}
	return (cur == nil || cur.head == e.head) && w.owns(accountID) == e.owned && w.foreignAppends == e.foreignGen
}

// installForeign makes the step's read of an account another node writes the writer's foreign
// copy of it, for this lookup (claimedHolder drops it again unless it is the holder).
func (w *Writer) installForeign(accountID string, e *accountRead) {
	a := &account{state: ledger.NewAccount(accountID), foreign: true}
	var prev uint64
	for _, rec := range e.recs {
		ev, brk := nextEvent(a, prev, rec)
		if brk != nil {
			a.broken = brk
			break
		}
		ev.Position = rec.Position
		a.state = ledger.Evolve(a.state, ev)
		a.hash, a.head, prev = ev.Hash, rec.Position, rec.Position
	}
	w.cache.accounts[accountID] = a
	e.mine = a
}

// refreshHeld replaces, once per read, the copy of an account this writer holds but does not
// own now with the step's read of it (in place, still this writer's: see holdsSubscription).
func (w *Writer) refreshHeld(accountID string, e *accountRead) {
	if e.applied {
		return
	}
	w.replaceAccount(accountID, e.recs)
	e.acct, e.applied = w.cache.accounts[accountID], true
	e.head = e.acct.head
}

// stepOutcome ends r's step when its planning ended: planned (its append holds what it needs
// from then on) or answered. Held or deferred, the step goes on with what it has read.
func (w *Writer) stepOutcome(r *request, err error) {
	if r.sub != nil && !errors.Is(err, errHeld) && !errors.Is(err, errDefer) {
		w.endStep(r)
	}
}
