package writer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// planned is one decided command waiting for its append.
type planned struct {
	req      *request
	acct     *account
	isNew    bool
	envs     []events.Envelope
	payloads []events.Payload
	data     [][]byte
	first    int
	// checked: the plan's first record carries its account's version check (not the partition fence).
	checked bool
}

// appendDone is the outcome of one in-flight append, handed back to the writer goroutine.
type appendDone struct {
	plans     []planned
	positions []uint64
	err       error
	// The round's business rejections, the outcome of writing them to the rejection log, and of
	// reading their partitions' fences after (rejections.go): the partitions whose fence moved.
	rejects  []pendingReject
	rejAt    []ledger.RejectionAt // where each of rejects landed in the log
	rejErr   error
	rejMoved map[int]bool
	fenceErr error
	// holderMoved marks (by index) the rejections whose account, a subscription holder, moved
	// past the version they were decided at (movedHolders).
	holderMoved map[int]bool
	// took is how long the append (and the rejection write beside it) took.
	took time.Duration
}

// launch decides as many requests as fit in one atomic append (one command per account, none on
// an account with an append in flight), starts the append in the background, and answers the
// requests that need no append. It returns the requests left for later, oldest first.
func (w *Writer) launch(ctx context.Context, reqs []*request) []*request {
	now := w.opts.Clock.Now().UTC()
	var (
		recs    []ledger.Record
		plans   []planned
		next    []*request
		rejects []pendingReject
	)
	w.roundOwns, w.toRecord = 0, nil // commandclaims.go: this round's, recorded below
	for i, r := range reqs {
		if len(recs) >= w.opts.MaxBatch {
			next = append(next, reqs[i:]...)
			break
		}
		if r.sweep {
			w.redecided++ // the sweep became its requests: progress, even if it made exactly one
			next = append(next, w.sweepRequests(now)...)
			continue
		}
		if r.barrier != nil {
			if w.flight.n > 0 {
				next = append(next, r)
			} else {
				w.forgetPartitions(r.forget)
				w.handOverSnapshot(ctx, r)
				close(r.barrier)
			}
			continue
		}
		if !w.admit(r) { // fenced.go
			w.redirect(r)
			continue
		}
		if w.flight.busy(r) || w.heldByStep(r) {
			next = append(next, r)
			continue
		}
		if w.awaitFresh(r, r.AccountID) {
			continue // held by the account's re-read (beside.go); back when it is fresh
		}
		if !r.internal {
			switch s := w.idem.lookup(r.CommandID, r.notCompacted, r.notRejCompact); {
			case s.accepted != nil:
				w.replyRecorded(r, s.accepted)
				continue
			case s.compact:
				w.replayCompacted(r, s.entry) // read back beside the loop
				continue
			case s.rejected != nil && s.rejected.pending:
				next = append(next, r) // its first answer is still being written
				continue
			case s.rejected != nil:
				w.replyRejected(r, s.rejected)
				continue
			case s.rejCompact && w.opts.Rejections != nil:
				w.replayRejection(r, s.rejEntry) // read back beside the loop (rejcompact.go)
				continue
			}
			if w.claimsCommand(r) && movesSubscription(r) {
				// A link or unlink writes the subscription's claim while it is planned: its
				// command id is recorded before any of that (the others' once decided: plan).
				w.toRecord = append(w.toRecord, r)
				continue
			}
		}
		// Hook (subscriptions.go): planGroup wraps plan; a subscription move plans two accounts.
		group, err := w.planGroup(ctx, r, now, len(recs))
		w.stepOutcome(r, err) // a subscription step ends once planned or answered (substep.go)
		if err != nil {
			if errors.Is(err, errDefer) {
				next = append(next, r)
				continue
			}
			if errors.Is(err, errHeld) {
				continue // side work holds it (beside.go)
			}
			if le := asError(err); rememberable(r, le) && w.claimsCommand(r) {
				// A rejection one writer remembers: its command id is recorded first, then the
				// command is decided again (commandclaims.go).
				w.toRecord = append(w.toRecord, r)
				continue
			}
			if le := asError(err); w.opts.Rejections != nil && rememberable(r, le) && (!r.fenced || w.opts.Fences != nil) {
				// Written to the rejection log with this round's append; answered after, once a
				// read of the fence after the write finds it unmoved (rejections.go), also when
				// the command was decided on the fence alone.
				rj := w.rememberRejection(r, le)
				rj.pending = true
				rejects = append(rejects, w.notePending(r, le, rj))
				continue
			}
			if r.fenced {
				w.redirect(r) // an answer nothing written carries: it waits for the lease (fenced.go)
				continue
			}
			w.reject(r, asError(err))
			continue
		}
		for _, p := range group { // empty: answered without an append
			w.flight.hold(p.req)
			for j, data := range p.data {
				recs = append(recs, ledger.Record{AccountID: p.req.AccountID, Data: data, Version: p.envs[j].Version,
					CheckVersion: j == 0, ExpectedVersion: p.acct.state.Version})
			}
			plans = append(plans, p)
		}
	}
	if len(w.toRecord) > 0 {
		w.recordCommands(w.toRecord) // the jobs keep the slice: the next round starts a new one
		w.toRecord = nil
	}
	if len(plans) == 0 && len(rejects) == 0 {
		return next
	}
	if w.opts.Fences != nil {
		carryFences(recs, w.opts.Fences.Fence, w.keepsVersionCheck) // fence.go
	}
	for i := range plans {
		plans[i].checked = recs[plans[i].first].CheckVersion // extends the account's trusted history
	}
	fences := w.rejectionFences(rejects) // nil without rejections: such a round reads no fence
	w.flight.launched()
	go func() {
		d := appendDone{plans: plans, rejects: rejects}
		began := time.Now()
		var wg sync.WaitGroup
		if len(rejects) > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.rejAt, d.rejErr = w.opts.Rejections.AppendRejections(ctx, rejectionsOf(rejects))
				if d.rejErr == nil {
					d.rejMoved, d.fenceErr = movedFences(ctx, w.opts.Store, fences) // after: see finishRejections
					d.holderMoved = movedHolders(ctx, w.opts.Store, rejects)
				}
			}()
		}
		if len(plans) > 0 {
			start := time.Now()
			d.positions, d.err = w.opts.Store.Append(ctx, recs)
			w.stats.appends.Add(1)
			w.stats.records.Add(uint64(len(recs)))
			w.stats.commands.Add(uint64(len(plans)))
			w.stats.appendMicros.Add(uint64(time.Since(start).Microseconds()))
		}
		wg.Wait()
		d.took = time.Since(began)
		w.flight.acks <- d
	}()
	return next
}

// finish applies an append's outcome: replies on success, bounded re-decision on failure. It
// returns the requests to try again.
func (w *Writer) finish(ctx context.Context, d appendDone) []*request {
	defer func() {
		for _, p := range d.plans {
			w.cache.dropForeign(p.req.AccountID) // read for a subscription move only (subclaims.go)
		}
	}()
	// The linger after this append waits for the clients it answers (not the expiry processor's
	// requests), and not at all after a failed append (recover retries those at once).
	w.flight.ended(&d, time.Now())
	w.finishRejections(d)
	if len(d.plans) == 0 {
		return nil
	}
	if d.err != nil {
		// Its accounts stay busy while recoverBeside finds out which of them conflicted.
		w.stats.failed.Add(1)
		if !errors.Is(d.err, ledger.ErrConflict) {
			w.flight.noteUnsure(d.plans) // it may land after recoverBeside reads the versions
		}
		w.recoverBeside(d.plans, d.err)
		return nil
	}
	w.release(d.plans)
	// The head moves before the replies go out, so a client that reads it after its reply sees
	// its own append.
	if last := d.positions[len(d.positions)-1]; last > w.head.Load() {
		w.head.Store(last)
	}
	for _, p := range d.plans {
		w.commit(p, d.positions[p.first:p.first+len(p.envs)])
	}
	return nil
}

// release ends what an append held: its accounts, command ids and unique-id reservations.
func (w *Writer) release(plans []planned) {
	for _, p := range plans {
		w.flight.release(p.req)
		w.releaseSubscriptions(p) // hook (subscriptions.go)
		for _, pl := range p.payloads {
			for _, id := range createdIDs(pl) {
				w.flight.unreserve(id, p.req.AccountID)
			}
		}
	}
}

var errDefer = errors.New("defer to next round")

// reloadTimeout bounds re-reading one account from the store.
const reloadTimeout = 30 * time.Second

// plan decides one request and seals its events; nil, nil means it was answered already.
func (w *Writer) plan(ctx context.Context, r *request, now time.Time, queued int) (*planned, error) {
	acct, isNew, err := w.account(r.AccountID)
	if err != nil {
		return nil, err
	}
	if r.ExpectedVersion != nil && *r.ExpectedVersion != acct.state.Version {
		return nil, ledger.Reject(ledger.CodeVersionConflict, "account %s is at version %d, command expected %d",
			r.AccountID, acct.state.Version, *r.ExpectedVersion)
	}
	w.assignItemID(r, acct.state)
	payloads, err := w.opts.Rules.Decide(acct.state, r.Command, now)
	if err != nil {
		return nil, err
	}
	if len(payloads) == 0 {
		if r.fenced {
			w.redirect(r) // an answer from memory alone: only the lease clock vouches for it
			return nil, nil
		}
		w.reply(r, Result{AccountID: r.AccountID, Version: acct.state.Version, Position: acct.head})
		return nil, nil
	}
	if queued+len(payloads) > w.opts.MaxBatch {
		if queued == 0 {
			return nil, ledger.Reject(ledger.CodeInvalidArgument, "command produces %d events, more than one append holds", len(payloads))
		}
		return nil, errDefer
	}
	for _, p := range payloads {
		for _, id := range createdIDs(p) {
			if owner, ok := w.cache.owners[id]; ok && owner != r.AccountID {
				return nil, ledger.Reject(ledger.CodeAlreadyExists, "%s is held by another account", displayID(id))
			}
			if holder, ok := w.flight.reservedBy(id); ok && holder != r.AccountID {
				// Another account's append of it is in flight: wait for its outcome rather than
				// answer (durably) already_exists for an id that append may still fail to take.
				return nil, errDefer
			}
		}
	}
	if w.claimsCommand(r) {
		// Decided to append: its command id is recorded first, and it is decided again once that
		// is done (commandclaims.go). A command answered without being remembered (invalid,
		// a version conflict, nothing to append) records nothing, as one writer keeps nothing.
		w.toRecord = append(w.toRecord, r)
		return nil, errHeld
	}
	if err := w.claimIDs(r, payloads); err != nil { // cross-process uniqueness: cluster.go
		return nil, err
	}
	for _, p := range payloads {
		for _, id := range createdIDs(p) {
			w.flight.reserve(id, r.AccountID)
		}
	}
	envs := make([]events.Envelope, len(payloads))
	data := make([][]byte, len(payloads))
	prev := acct.hash
	if prev == "" {
		prev = events.ZeroHash
	}
	for i, p := range payloads {
		raw, err := events.EncodePayload(p)
		if err != nil {
			return nil, err
		}
		envs[i] = events.Envelope{
			EventID: w.opts.NewID(), Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()),
			AccountID: r.AccountID, Version: acct.state.Version + uint64(i) + 1, OccurredAt: now,
			CommandID: r.CommandID, CommandHash: r.BodyHash, CorrelationID: r.CorrelationID,
			Payload: raw, PrevHash: prev,
		}
		if data[i], err = envs[i].SealEncode(); err != nil {
			return nil, err
		}
		prev = envs[i].Hash
	}
	return &planned{req: r, acct: acct, isNew: isNew, envs: envs, payloads: payloads, data: data, first: queued}, nil
}

// assignItemID gives a marketplace upgrade without item_id the first "<license>-u<n>" that no
// account holds: item ids are unique across accounts, which only the writer can see, so the id
// is injected here like any other generated id rather than derived inside the pure domain.
func (w *Writer) assignItemID(r *request, a ledger.Account) {
	uc, ok := r.Command.(ledger.UpgradeContract)
	if !ok || uc.ItemID != "" || !ledger.UpgradeMakesItem(a.Licenses[uc.LicenseID].Source) {
		return
	}
	for n := 1; n <= len(a.Licenses)+len(w.cache.owners)+1; n++ {
		id := fmt.Sprintf("%s-u%d", uc.LicenseID, n)
		if !ledger.ValidID(id) {
			return // the domain derives or rejects
		}
		_, local := a.Licenses[id]
		_, global := w.cache.owners["license:"+id]
		_, pending := w.flight.reservedBy("license:" + id)
		if !local && !global && !pending {
			uc.ItemID = id
			r.Command = uc
			return
		}
	}
}

// account returns the in-memory account. A stale one is never re-read here, on the writer
// goroutine: the request waits for its re-read beside the loop (awaitFresh) before it is planned.
func (w *Writer) account(id string) (*account, bool, error) {
	a, ok := w.cache.accounts[id]
	if !ok {
		return &account{state: ledger.NewAccount(id)}, true, nil
	}
	if a.stale {
		return nil, false, errDefer // not reached: launch and planLink wait for the re-read first
	}
	if a.broken != nil {
		return nil, false, a.broken.refusal(id)
	}
	return a, false, nil
}

// reload replaces an account's state with what the store holds, on the writer goroutine: only
// before a snapshot (freshenStale), which waits for nothing else. Commands re-read beside it.
func (w *Writer) reload(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	recs, err := w.opts.Store.ReadAccount(ctx, id, 0)
	if err != nil {
		return err
	}
	w.replaceAccount(id, recs)
	return nil
}

// replaceAccount rebuilds an account from its stored records (which also brings back the
// idempotency records and unique ids its events carry).
func (w *Writer) replaceAccount(id string, recs []ledger.Record) {
	old := w.cache.accounts[id]
	delete(w.cache.accounts, id)
	for _, r := range recs {
		w.apply(r)
		if r.Position > w.head.Load() {
			w.head.Store(r.Position)
		}
	}
	if _, ok := w.cache.accounts[id]; !ok {
		w.cache.accounts[id] = &account{state: ledger.NewAccount(id)}
	}
	if a := w.cache.accounts[id]; old != nil && old.broken != nil && a.broken == nil && old.broken.position > a.trusted {
		a.broken = old.broken // a mark (marks.go) for a message the re-read did not reach
	}
	w.schedule(id, w.cache.accounts[id])
}

// recover handles a refused or uncertain append once recoverBeside knows which accounts moved:
// those are re-read before their next command (which also picks up our own events if the append
// did land). A conflict charges a retry only to the commands on the accounts that moved (with a
// subscription move, either of its two); the others are put back as they were. A store failure
// (or a conflict on no account we can see) charges every command: the bound on attempts is what
// ends a store that keeps failing.
func (w *Writer) recover(plans []planned, moved map[string]bool, cause error) []*request {
	w.stats.retried.Add(uint64(len(plans)))
	charged := make(map[string]bool, len(plans)) // command ids
	for _, p := range plans {
		if !moved[p.req.AccountID] {
			continue
		}
		charged[p.req.CommandID] = true
		if !w.owns(p.req.AccountID) && !p.req.fenced {
			continue // another node's account, read only for a subscription move (subclaims.go)
		}
		if a, ok := w.cache.accounts[p.req.AccountID]; ok {
			a.stale = true
		} else {
			w.cache.accounts[p.req.AccountID] = &account{state: ledger.NewAccount(p.req.AccountID), stale: true}
		}
	}
	chargeAll := !errors.Is(cause, ledger.ErrConflict) || len(charged) == 0
	retry := make([]*request, 0, len(plans))
	for _, p := range plans {
		if isMoveSide(p.req) { // hook (subscriptions.go): re-planned with the link that caused it
			continue
		}
		if chargeAll || charged[p.req.CommandID] {
			p.req.attempts++
			if p.req.attempts >= w.opts.MaxAttempts {
				w.reject(p.req, ledger.Reject(ledger.CodeUnavailable, "event store did not accept the append after %d attempts: %v", p.req.attempts, cause))
				continue
			}
		}
		retry = append(retry, p.req)
	}
	return retry
}

// commit folds appended events into memory and answers the command.
func (w *Writer) commit(p planned, positions []uint64) {
	a := p.acct
	if a.foreign {
		w.foreignAppends++ // the reads of subscription steps in flight are redone (substep.go)
	}
	if p.isNew {
		w.cache.accounts[p.req.AccountID] = a
	}
	res := Result{AccountID: p.req.AccountID, Events: make([]EventRef, len(p.envs))}
	w.ownState(a)
	for i, env := range p.envs {
		ev := events.Event{Envelope: env, Position: positions[i], Data: p.payloads[i]}
		a.state = ledger.Evolve(a.state, ev)
		w.cache.own(p.req.AccountID, p.payloads[i])
		res.Events[i] = EventRef{Type: env.Type, Version: env.Version, Position: positions[i]}
	}
	if p.checked {
		w.flight.sure(p.req.AccountID)
	}
	if p.checked && a.trusted == a.head {
		a.trusted = positions[len(positions)-1] // nothing landed between its head and this append
	}
	a.head = positions[len(positions)-1]
	a.hash = p.envs[len(p.envs)-1].Hash
	w.schedule(p.req.AccountID, a)
	res.Version, res.Position = a.state.Version, a.head
	if !p.req.internal {
		w.idem.accepted[p.req.CommandID] = &commandRecord{accountID: p.req.AccountID, bodyHash: p.req.BodyHash, result: res}
	}
	w.reply(p.req, res)
}

func (w *Writer) reply(r *request, res Result) {
	w.endStep(r) // substep.go
	if r.internal {
		w.cache.advanced(r.AccountID)
	}
	if r.Reply != nil {
		r.Reply(res)
	}
}

// replyRecorded answers a repeated command_id from memory.
func (w *Writer) replyRecorded(r *request, rec *commandRecord) {
	if rec.accountID != r.AccountID || rec.bodyHash != r.BodyHash {
		w.reject(r, ledger.Reject(ledger.CodeIdempotencyKeyReused,
			"command_id %s was already used with a different body", r.CommandID))
		return
	}
	w.stats.replayed.Add(1)
	res := rec.result
	res.Replayed = true
	w.reply(r, res)
}

// sweepRequests makes one AdvanceTime request per account with a renewal or expiry due (at most
// maxSweep; the rest are found by the next sweep, a second later). Only the due accounts are
// looked at (due.go).
func (w *Writer) sweepRequests(now time.Time) []*request {
	var out []*request
	// Popping more than maxSweep keeps accounts already in flight (or failing every time) from
	// filling the sweep and starving accounts that fell due after them.
	for _, id := range w.dueAccounts(now, 4*maxSweep) {
		a := w.cache.accounts[id]
		if a.broken != nil {
			a.nextDue = time.Time{} // off the schedule; a reload that mends it schedules it again
			continue
		}
		w.reschedule(id) // until its state changes, in case this round does not bring it up to date
		if !w.owns(id) {
			continue // its partition is moving: the new owner sweeps it
		}
		if len(out) >= maxSweep || w.cache.isAdvancing(id) || len(ledger.DueEvents(a.state, now)) == 0 {
			continue
		}
		w.cache.advance(id)
		out = append(out, &request{internal: true, Request: submit.Request{
			AccountID: id, CommandID: timeCommandID(id, a.state.Version),
			CorrelationID: "expiry-processor", Command: ledger.AdvanceTime{},
			Reply: func(res Result) {
				if res.Err != nil {
					w.opts.Log.Error().Str("account_id", id).Str("code", string(res.Err.Code)).Msg(res.Err.Message)
				} else if len(res.Events) > 0 {
					w.opts.Log.Info().Str("account_id", id).Int("events", len(res.Events)).Uint64("position", res.Position).Msg("licenses brought up to date")
				}
			},
		}})
	}
	return out
}

// displayID strips the kind prefix of a unique-id key ("license:L-1" -> "license L-1").
func displayID(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == ':' {
			return key[:i] + " " + key[i+1:]
		}
	}
	return key
}
