package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// StreamHistory reads the whole stream in order; the JetStream event store (jetstore.Store)
// implements it. The fleet queries answer as_of from it.
type StreamHistory interface {
	Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error)
}

// The event store answers the fleet's as_of; UseHistory finds it by this interface, so it is
// checked here rather than discovered missing at run time.
var _ StreamHistory = (*jetstore.Store)(nil)

// MaxFleetAsOfEvents bounds the events a fleet as_of query folds: such a query reads the stream
// from its start, so past this size it is refused (unavailable) rather than left to run long.
const MaxFleetAsOfEvents = 2_000_000

var errPastBound = errors.New("past the as_of bound")

// MaxFleetFoldWait bounds how long a fleet as_of query waits for the fold before it: such folds
// run one at a time (each reads the stream from its start and holds every account), so many
// sent at once queue instead of multiplying the ledger's memory and CPU.
const MaxFleetFoldWait = 30 * time.Second

// foldTurn waits for the one fleet fold slot, within ctx and MaxFleetFoldWait; release frees it.
func (q *Queries) foldTurn(ctx context.Context) (release func(), err error) {
	wctx, cancel := context.WithTimeout(ctx, MaxFleetFoldWait)
	defer cancel()
	select {
	case q.fleetFold <- struct{}{}:
		return func() { <-q.fleetFold }, nil
	case <-wctx.Done():
		return nil, ledger.Reject(ledger.CodeUnavailable, "another as_of query across accounts is being folded; retry")
	}
}

// FleetAsOfClockSkew is how far past the as_of bound the fleet fold reads on. One writer stamps
// its appends in time order, but the nodes of a cluster each stamp theirs with their own clock,
// so the stream is in time order only up to their skew: an event of one account may follow a
// later one of another. Reading on this far, and skipping each account's events from its first
// one past the bound, gives every account exactly what FoldAsOf gives it alone.
const FleetAsOfClockSkew = time.Minute

// fleetAsOf is a fleet folded to a past time.
type fleetAsOf struct {
	st fleetState
	// due counts the renewals and expiries applied at the time although recorded later.
	due int
	// broken are the accounts left out, by id: their history breaks before the time.
	broken map[string]api.BrokenAccount
}

// foldFleetAsOf folds, for every account, its events up to its first one that occurred after at
// (as FoldAsOf does), reading the stream until an event more than FleetAsOfClockSkew after at;
// then it applies to every account the renewals and expiries due at at.
//
// An account whose history breaks before its first event past at (a message that cannot be
// decoded, or an event that does not follow its last version) fails closed on its own: it is
// left out and reported in broken, and the fold goes on with the other accounts. A message that
// cannot be decoded tells no time, so it breaks its account unless an earlier event of the
// account was already past at.
func foldFleetAsOf(ctx context.Context, h StreamHistory, at time.Time) (fleetAsOf, error) {
	out := fleetAsOf{st: fleetState{accounts: map[string]ledger.Account{}}, broken: map[string]api.BrokenAccount{}}
	st := &out.st
	n := 0
	past := map[string]bool{} // accounts with an event after at: the rest of theirs is skipped
	breaks := func(r ledger.Record, reason string) {
		out.broken[r.AccountID] = api.BrokenAccount{AccountID: r.AccountID, Position: r.Position, Reason: reason}
		delete(st.accounts, r.AccountID) // fail closed: none of its state is shown
	}
	_, err := h.Read(ctx, 1, func(r ledger.Record) error {
		if n++; n > MaxFleetAsOfEvents {
			return ledger.Reject(ledger.CodeUnavailable, "as_of across accounts folds at most %d events; the stream has more", MaxFleetAsOfEvents)
		}
		_, broken := out.broken[r.AccountID]
		ev, err := events.Decode(r.Data)
		if err != nil {
			if !past[r.AccountID] && !broken {
				breaks(r, fmt.Sprintf("position %d cannot be decoded: %v", r.Position, err))
			}
			return nil
		}
		if ev.OccurredAt.After(at.Add(FleetAsOfClockSkew)) {
			return errPastBound
		}
		if broken || past[r.AccountID] || ev.OccurredAt.After(at) {
			past[r.AccountID] = true
			return nil
		}
		a, ok := st.accounts[r.AccountID]
		if !ok {
			a = ledger.NewAccount(r.AccountID)
		}
		if ev.AccountID != r.AccountID || ev.Version != a.Version+1 {
			breaks(r, fmt.Sprintf("position %d: event of %s version %d does not follow %s version %d",
				r.Position, ev.AccountID, ev.Version, r.AccountID, a.Version))
			return nil
		}
		ev.Position = r.Position
		st.accounts[r.AccountID], st.position = ledger.Evolve(a, ev), r.Position
		return nil
	})
	if err != nil && !errors.Is(err, errPastBound) {
		var le *ledger.Error
		if errors.As(err, &le) {
			return out, le
		}
		return out, ledger.Reject(ledger.CodeUnavailable, "read the stream: %v", err)
	}
	for id, a := range st.accounts {
		for _, p := range ledger.DueEvents(a, at.UTC()) {
			a = ledger.Evolve(a, events.Event{Envelope: events.Envelope{AccountID: id, Version: a.Version}, Data: p})
			out.due++
		}
		st.accounts[id] = a
	}
	st.ids = sortedIDs(st.accounts)
	return out, nil
}

// past is the as_of part of the answer: the time, the unrecorded events and the accounts left
// out (at most api.MaxBrokenAccounts listed, in id order).
func (f fleetAsOf) past(at time.Time) *Past {
	p := &Past{AsOf: at.UTC(), UnrecordedEvents: f.due, BrokenCount: len(f.broken)}
	for _, id := range slices.Sorted(maps.Keys(f.broken)) {
		if len(p.BrokenAccounts) == api.MaxBrokenAccounts {
			break
		}
		p.BrokenAccounts = append(p.BrokenAccounts, f.broken[id])
	}
	return p
}

// answerFleet answers a fleet query: from the live projection (after min_position), or with
// as_of from a fold of the stream up to that time.
func (q *Queries) answerFleet(ctx context.Context, name string, r QueryRequest) (any, error) {
	f, err := parseFleet(name, r)
	if err != nil {
		return nil, err
	}
	if r.AsOf != "" {
		at, err := parseAsOf(r.AsOf)
		if err != nil {
			return nil, err
		}
		if q.stream == nil {
			return nil, ledger.Reject(ledger.CodeUnavailable, "as_of queries across accounts are not served here: no event store")
		}
		release, err := q.foldTurn(ctx)
		if err != nil {
			return nil, err
		}
		fold, err := foldFleetAsOf(ctx, q.stream, at)
		release()
		if err != nil {
			return nil, err
		}
		return renderFleet(name, pastFleet(fold.st, q.cat), f, fold.past(at))
	}
	if err := q.waitFor(ctx, r.MinPosition); err != nil {
		return nil, err
	}
	var out any
	q.proj.liveFleet(q.cat, func(st fleetState) { out, err = renderFleet(name, st, f, nil) })
	return out, err
}

func parseAsOf(s string) (time.Time, error) {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return at, ledger.Reject(ledger.CodeInvalidArgument, "as_of must be an RFC 3339 time such as 2026-01-15T09:00:00Z")
	}
	return at, nil
}

// waitFor waits for the projection to reach position (read-your-writes); 0 does not wait.
func (q *Queries) waitFor(ctx context.Context, position uint64) error {
	if position == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, q.maxWait)
	defer cancel()
	if err := q.proj.WaitFor(wctx, position); err != nil {
		return ledger.Reject(ledger.CodeUnavailable, "projection is at position %d and did not reach %d within %s",
			q.proj.Position(), position, q.maxWait)
	}
	return nil
}
