package writer

import (
	"context"
	"errors"
	"time"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// This file holds the writer's part of PAYG usage and marketplace subscriptions (issue 5):
//
//   - A link_subscription that moves a subscription from account A to account B is one command
//     with two accounts' events: A's SubscriptionUnlinked (decided from a TransferSubscription,
//     the "move side") and B's SubscriptionLinked go into the same atomic append, A's first, each
//     account's first record guarded by its expected head. Both accounts are busy while it is in
//     flight, so no other command on either can interleave, and at every stream position the
//     subscription is held by exactly the account the events say.
//   - Subscription ids are unique across accounts: the cache's owners map "subscription:<id>" to
//     the account holding it (kept by ownSubscription from the events, rebuilt from account state
//     after a snapshot), and the reservations of the appends in flight (inFlight) hold the new
//     holder of a link in flight so that a second link of the same subscription waits for the
//     first to land.
//   - A record_usage repeating a recorded usage_id with the same content is answered with the
//     reply of the command that recorded it (ledger.DuplicateUsage).

// subscriptionKey is the key of a marketplace subscription among unique ids (accountCache.owners,
// inFlight.reserved).
func subscriptionKey(id string) string { return "subscription:" + id }

// planGroup plans one request: usually one account's events, two for a subscription move (the
// holder's side first). It returns no plans when the request was answered without an append.
func (w *Writer) planGroup(ctx context.Context, r *request, now time.Time, queued int) ([]planned, error) {
	if link, ok := r.Command.(ledger.LinkSubscription); ok {
		return w.planLink(ctx, r, link, now, queued)
	}
	p, err := w.plan(ctx, r, now, queued)
	if unlink, ok := r.Command.(ledger.UnlinkSubscription); ok && err == nil && p != nil && w.opts.Subscriptions != nil {
		if err = w.claimUnlink(r, unlink.SubscriptionID); err != nil { // beside the loop: substep.go
			w.unreserve([]planned{*p})
			return nil, err
		}
	}
	var dup *ledger.DuplicateUsage
	if errors.As(err, &dup) {
		if w.replayUsage(r, dup) {
			return nil, errHeld
		}
		return nil, nil
	}
	if err != nil || p == nil {
		return nil, err
	}
	return []planned{*p}, nil
}

// planLink decides a link on the requesting account with the current holder filled in and, when
// the subscription moves, the holder's side as well. It defers while another link of the same
// subscription, or any command of the holder, is in flight or already in this batch.
func (w *Writer) planLink(ctx context.Context, r *request, link ledger.LinkSubscription, now time.Time, queued int) ([]planned, error) {
	key := subscriptionKey(link.SubscriptionID)
	if to, ok := w.flight.reservedBy(key); ok && to != r.AccountID {
		return nil, errDefer
	}
	// A stale requester was re-read before its idempotency check (launch): an uncertain append of
	// this very link may have landed (then it is a replay), and its events say who holds the
	// subscription now; planning the former holder's side from the owner index would fail on a
	// move that already happened. A stale holder is re-read here, beside the loop, likewise.
	holder := w.cache.owners[key]
	var claim SubscriptionClaim
	if w.opts.Subscriptions != nil { // other nodes write other partitions: subclaims.go
		if _, err := w.beginStep(r, link.SubscriptionID); err != nil { // its I/O runs beside: substep.go
			return nil, err
		}
		var err error
		if holder, claim, err = w.claimedHolder(r, link.SubscriptionID); err != nil {
			w.cache.dropForeign(holder)
			return nil, err
		}
	}
	if a := w.cache.accounts[r.AccountID]; holder != "" && holder != r.AccountID && a != nil && !a.foreign &&
		a.state.Subscription.ID == link.SubscriptionID {
		// The requester's copy holds the subscription and the stream says another account does:
		// another node moved it away, appending the requester's side under its version check
		// alone. Decided on this copy, the link would be "already linked here", answered from
		// memory. The copy is re-read first, as after a conflict (and as many times).
		w.cache.dropForeign(holder)
		if r.attempts++; r.attempts >= w.opts.MaxAttempts {
			return nil, ledger.Reject(ledger.CodeUnavailable, "account %s kept changing while subscription %s was linked; retry with the same command_id", r.AccountID, link.SubscriptionID)
		}
		a.stale = true
		w.awaitFresh(r, r.AccountID)
		return nil, errHeld
	}
	link.HeldBy = holder
	r.Command = link // re-resolved on every attempt
	var group []planned
	if holder != "" && holder != r.AccountID {
		if w.flight.accountBusy(holder) {
			w.cache.dropForeign(holder)
			return nil, errDefer
		}
		if !w.owns(holder) && w.opts.Subscriptions == nil {
			// The holder is in a partition another node writes (or one that is moving): a move
			// across partitions is not supported yet (docs/OPERATIONS.md, known limitations).
			return nil, ledger.Reject(ledger.CodeUnavailable, "subscription %s is held by account %s, which another node writes; unlink it there first", link.SubscriptionID, holder)
		}
		if w.awaitFresh(r, holder) {
			return nil, errHeld
		}
		side := &request{internal: true, Request: submit.Request{
			AccountID: holder, CommandID: r.CommandID, CorrelationID: r.CorrelationID, BodyHash: r.BodyHash,
			Command: ledger.TransferSubscription{SubscriptionID: link.SubscriptionID, Marketplace: link.Marketplace, ToAccountID: r.AccountID},
		}}
		sp, err := w.plan(ctx, side, now, queued)
		if err != nil {
			w.cache.dropForeign(holder)
			return nil, err
		}
		if sp == nil {
			w.cache.dropForeign(holder)
			return nil, ledger.Reject(ledger.CodeInternal, "moving subscription %s from %s decided nothing", link.SubscriptionID, holder)
		}
		group = append(group, *sp)
		queued += len(sp.data)
	}
	p, err := w.plan(ctx, r, now, queued)
	if err == nil && p != nil && w.opts.Subscriptions != nil && holder != r.AccountID {
		err = w.claimLink(r, link.SubscriptionID, holder, claim) // errHeld until written
	}
	if err != nil || p == nil {
		w.unreserve(group)
		if holder != r.AccountID {
			w.cache.dropForeign(holder)
		}
		if err != nil && p != nil {
			w.unreserve([]planned{*p})
		}
		return nil, err
	}
	w.flight.reserve(key, r.AccountID)
	return append(group, *p), nil
}

// isMoveSide reports whether a planned request is the holder's side of a subscription move; it is
// never retried on its own (the link that caused it is re-planned instead).
func isMoveSide(r *request) bool {
	_, ok := r.Command.(ledger.TransferSubscription)
	return ok && r.internal
}

// unreserve drops the unique-id reservations of plans that will not be appended.
func (w *Writer) unreserve(plans []planned) {
	for _, p := range plans {
		for _, pl := range p.payloads {
			for _, id := range createdIDs(pl) {
				w.flight.unreserve(id, p.req.AccountID)
			}
		}
	}
}

// releaseSubscriptions ends the reservation of a link once its append has landed or failed.
func (w *Writer) releaseSubscriptions(p planned) {
	for _, pl := range p.payloads {
		if e, ok := pl.(events.SubscriptionLinked); ok {
			w.flight.unreserve(subscriptionKey(e.SubscriptionID), p.req.AccountID)
		}
	}
}

// subscriptionOwned lists the subscription an account holds, for rebuilding the owners from state.
func subscriptionOwned(a ledger.Account) []string {
	if a.Subscription.ID == "" {
		return nil
	}
	return []string{subscriptionKey(a.Subscription.ID)}
}

// replayUsage answers a repeated usage with the reply of the command that recorded it. When that
// command's record is compacted it is read back beside the loop, and true says r is held until
// then.
func (w *Writer) replayUsage(r *request, dup *ledger.DuplicateUsage) (held bool) {
	rec := dup.Record
	res := Result{
		AccountID: r.AccountID, Version: rec.Version, Position: rec.Position,
		Events: []EventRef{{Type: events.TypeUsageRecorded, Version: rec.Version, Position: rec.Position}},
	}
	reply := func(first *commandRecord) {
		if first != nil && first.accountID == r.AccountID {
			res = first.result // the whole first reply (it may have brought renewals up to date too)
		}
		res.Replayed = true
		w.stats.replayed.Add(1)
		w.reply(r, res)
	}
	first := w.idem.lookup(rec.CommandID, false, true)
	if !first.compact {
		reply(first.accepted)
		return false
	}
	w.readBack(rec.CommandID, first.entry, func(first *commandRecord, _ error) []*request {
		reply(first) // on an error, the usage's own event is the reply
		return nil
	})
	return true
}
