package writer

import (
	"context"
	"errors"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Marketplace subscriptions across partitions. A subscription moves between accounts that
// different nodes may write, so a node's memory cannot say who holds it. Every node therefore
// goes through a claim in a store they all share (SubscriptionClaims, on LEDGER_IDS). Its
// round trips, and the reads of accounts below, run beside the writer goroutine (substep.go):
//
//   - Before a link, the node reads the claim and checks, on the stream, that the account it
//     names holds the subscription (the holder's own state when this node writes it, else the
//     holder's events read back).
//   - It decides the link (with the holder's side of a move), then rewrites the claim with a
//     revision check: of two nodes linking one subscription at once, one write fails and that
//     link is answered unavailable (its retry sees the new holder). Only then does it append,
//     and the holder's side carries the holder's expected head, so at every stream position the
//     subscription has at most one holder.
//   - An unlink rewrites the claim only while it names the unlinking account.
//   - A claim that names an account that does not hold the subscription is a move in flight
//     while younger than moveBound (a link then waits: unavailable), and a move that never
//     landed after it: the subscription is where the claim's Previous says, if that account
//     still holds it.
//
// A holder written by another node is appended to by the mover; that node's copy of the account
// turns stale and its next append to it conflicts and re-reads it (the per-account expected
// head).

// SubscriptionClaim is the shared record of a subscription's last link.
type SubscriptionClaim struct {
	Holder, Previous string
	At               time.Time
	// Revision is the store's revision of the claim read (0: none).
	Revision uint64
}

// ErrClaimMoved is returned by SubscriptionClaims.ClaimSubscription when the claim changed.
var ErrClaimMoved = errors.New("subscription claim moved")

// SubscriptionClaims reads and writes subscription claims (server adapts *jetstore.Claims).
type SubscriptionClaims interface {
	Subscription(ctx context.Context, id string) (SubscriptionClaim, error)
	// ClaimSubscription writes c if the claim is still at revision (0: none); ErrClaimMoved else.
	ClaimSubscription(ctx context.Context, id string, c SubscriptionClaim, revision uint64) (uint64, error)
}

// moveBound is how long a claim naming an account that does not hold the subscription counts as
// a move in flight: longer than an append may take to land (the store's timeout).
const moveBound = 30 * time.Second

// claimedHolder finds who holds the subscription now (see the comment above) and returns it
// with the claim read. Its store reads run beside the loop (substep.go): the first one r's step
// has no result for is started and r is held (errHeld), to be planned again once it is in. Of
// the accounts of other partitions it reads, only the holder it returns is kept, for the move's
// planning (planLink drops it after): a copy left behind would be taken for the account itself
// once its partition is this writer's again without a load (a lapsed lease re-acquired), and
// dropped after its next append.
func (w *Writer) claimedHolder(r *request, id string) (holder string, c SubscriptionClaim, err error) {
	var read []string
	defer func() {
		for _, a := range read {
			if err != nil || a != holder {
				w.cache.dropForeign(a)
			}
		}
	}()
	holds := func(accountID string) (bool, error) {
		read = append(read, accountID)
		return w.holdsSubscription(r, accountID, id)
	}
	if c, err = w.stepClaim(r); err != nil {
		return "", c, err
	}
	hint := c.Holder
	if c.Revision == 0 {
		hint = w.cache.owners[subscriptionKey(id)] // no claim yet: a store from before claims
		if hint == "" {
			hint = w.cache.foreignSubs[id]
		}
	}
	if ok, err := holds(hint); err != nil || ok {
		return hint, c, err
	}
	if c.Revision != 0 && c.Holder != "" && c.Holder != r.AccountID && w.opts.Clock.Now().Sub(c.At) < moveBound {
		return "", c, ledger.Reject(ledger.CodeUnavailable, "subscription %s is being moved to account %s; retry with the same command_id", id, c.Holder)
	}
	if c.Previous != "" {
		if ok, err := holds(c.Previous); err != nil || ok {
			return c.Previous, c, err
		}
	}
	// Neither holds it. A move the claim no longer names may still have landed: a claim taken
	// over as "never landed" while its move was only paused, whose append then won on the
	// previous holder's version. The history of each account the claim names says where its
	// last move sent the subscription; that account (or the next it moved it to) may hold it.
	for _, from := range []string{c.Holder, c.Previous} {
		at := from
		for hop := 0; at != ""; hop++ {
			if hop == maxMoveHops {
				return "", c, ledger.Reject(ledger.CodeUnavailable, "subscription %s: no holder found after %d moves; retry with the same command_id", id, hop)
			}
			next, err := w.movedTo(r, at, id)
			if err != nil {
				return "", c, err
			}
			if next == "" {
				break
			}
			if ok, err := holds(next); err != nil || ok {
				return next, c, err
			}
			at = next
		}
	}
	return "", c, nil
}

// maxMoveHops bounds the moves claimedHolder follows from one account the claim names.
const maxMoveHops = 8

// movedTo returns, from the account's stored events as r's step read them (stepRead: errHeld
// while that read runs), the account its last unlink of the subscription moved it to ("" when it
// never gave it up, or unlinked it without a move).
func (w *Writer) movedTo(r *request, accountID, id string) (string, error) {
	e, err := w.stepRead(r, accountID)
	if err != nil {
		return "", err
	}
	to := ""
	for _, rec := range e.recs {
		ev, err := events.Decode(rec.Data)
		if err != nil {
			continue // a break is the load's to judge; it moves no subscription
		}
		switch e := ev.Data.(type) {
		case events.SubscriptionLinked:
			if e.SubscriptionID == id {
				to = ""
			}
		case events.SubscriptionUnlinked:
			if e.SubscriptionID == id {
				to = e.MovedToAccountID
			}
		}
	}
	return to, nil
}

// holdsSubscription reports whether the account holds the subscription: from memory when this
// writer writes it (a stale one is re-read beside the loop first, with r held: errHeld), else
// from its events read back beside the loop (stepRead, errHeld until they are in). An account
// this writer does not hold is kept, as a foreign account, for the move's planning (dropped
// after it). One it holds but does not own now (a partition whose lease lapsed while its fence is
// still this writer's, kept for a re-acquire; or one lost and not forgotten yet) is re-read in
// place, still this writer's: read as foreign it was replaced and then deleted (dropForeign), and
// once re-acquired without a load it counted as a new account; left as it was, it would miss
// what another node appended to it meanwhile.
func (w *Writer) holdsSubscription(r *request, accountID, id string) (bool, error) {
	if accountID == "" {
		return false, nil
	}
	held, ok := w.cache.accounts[accountID]
	switch {
	case w.owns(accountID):
		if w.awaitFresh(r, accountID) {
			return false, errHeld
		}
	case ok && !held.foreign:
		if w.flight.accountBusy(accountID) || w.cache.loading(accountID) != nil {
			return false, errDefer // an append or a re-read of it is in flight
		}
		e, err := w.stepRead(r, accountID)
		if err != nil {
			return false, err
		}
		w.refreshHeld(accountID, e)
	default:
		e, err := w.stepRead(r, accountID)
		if err != nil {
			return false, err
		}
		w.installForeign(accountID, e)
	}
	a, _, err := w.account(accountID)
	if err != nil {
		return false, err
	}
	return a.state.Subscription.ID == id, nil
}

// holdsASubscription reports whether the account, as this writer holds it, holds a marketplace
// subscription: another node may append to it (a move), so its appends keep their version check
// (carryFences).
func (w *Writer) holdsASubscription(accountID string) bool {
	a, ok := w.cache.accounts[accountID]
	return ok && a.state.Subscription.ID != ""
}

// claimLink records the link's new holder in the shared claim before its append, beside the
// loop (errHeld until the write is in; r is then planned again). A step that wrote the claim
// naming this holder goes on; one whose holder changed since writes it again, over its own write.
func (w *Writer) claimLink(r *request, id, holder string, c SubscriptionClaim) error {
	s := r.sub
	if s.wrote != nil && s.wrote.Previous == holder {
		return nil
	}
	if err := w.stepJob(r); err != nil {
		return err
	}
	rev := c.Revision
	if s.wrote != nil {
		rev = s.wrote.Revision
	}
	claim := SubscriptionClaim{Holder: r.AccountID, Previous: holder, At: w.opts.Clock.Now()}
	subs := w.opts.Subscriptions
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		next, err := subs.ClaimSubscription(ctx, id, claim, rev)
		cancel()
		return func() []*request {
			switch {
			case errors.Is(err, ErrClaimMoved):
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "subscription %s was linked elsewhere meanwhile; retry with the same command_id", id))
			case err != nil:
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "claiming subscription %s: %v; retry with the same command_id", id, err))
			default:
				claim.Revision = next
				s.wrote = &claim
				return []*request{r}
			}
			return nil
		}
	})
	return errHeld
}

// claimUnlink clears the claim of a subscription the account unlinks, while it names the
// account: the read and the write run beside the loop (errHeld until they are done; r is then
// planned again, and goes on once the claim is released).
func (w *Writer) claimUnlink(r *request, id string) error {
	s, err := w.beginStep(r, id)
	if err != nil || s.released {
		return err
	}
	if err := w.stepJob(r); err != nil {
		return err
	}
	subs, acct, at := w.opts.Subscriptions, r.AccountID, w.opts.Clock.Now()
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		defer cancel()
		c, readErr := subs.Subscription(ctx, id)
		moved := readErr == nil && c.Revision != 0 && c.Holder != acct
		var err error
		if readErr == nil && !moved {
			_, err = subs.ClaimSubscription(ctx, id, SubscriptionClaim{Previous: acct, At: at}, c.Revision)
		}
		return func() []*request {
			switch {
			case readErr != nil:
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "reading the claim of subscription %s: %v; retry with the same command_id", id, readErr))
			case moved:
				// The unlink was decided on a copy that holds the subscription; another node may
				// have moved it away (its side of the move is not in the copy): the retry is
				// decided on the account re-read, not stopped here again by the same copy.
				if a := w.cache.accounts[acct]; a != nil && !a.foreign {
					a.stale = true
				}
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "subscription %s is being moved to account %s; retry with the same command_id", id, c.Holder))
			case err != nil:
				w.reject(r, ledger.Reject(ledger.CodeUnavailable, "releasing the claim of subscription %s: %v; retry with the same command_id", id, err))
			default:
				s.released = true
				return []*request{r}
			}
			return nil
		}
	})
	return errHeld
}
