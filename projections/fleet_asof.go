package projections

import (
	"context"
	"errors"
	"time"

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

// foldFleetAsOf folds, for every account, its events up to its first one that occurred after at
// (as FoldAsOf does), reading the stream until an event more than FleetAsOfClockSkew after at;
// then it applies to every account the renewals and expiries due at at.
func foldFleetAsOf(ctx context.Context, h StreamHistory, at time.Time) (fleetState, int, error) {
	st := fleetState{accounts: map[string]ledger.Account{}}
	n := 0
	past := map[string]bool{} // accounts with an event after at: the rest of theirs is skipped
	_, err := h.Read(ctx, 1, func(r ledger.Record) error {
		if n++; n > MaxFleetAsOfEvents {
			return ledger.Reject(ledger.CodeUnavailable, "as_of across accounts folds at most %d events; the stream has more", MaxFleetAsOfEvents)
		}
		ev, err := events.Decode(r.Data)
		if err != nil {
			return ledger.Reject(ledger.CodeInternal, "position %d cannot be decoded: %v", r.Position, err)
		}
		if ev.OccurredAt.After(at.Add(FleetAsOfClockSkew)) {
			return errPastBound
		}
		if past[r.AccountID] || ev.OccurredAt.After(at) {
			past[r.AccountID] = true
			return nil
		}
		a, ok := st.accounts[r.AccountID]
		if !ok {
			a = ledger.NewAccount(r.AccountID)
		}
		if ev.AccountID != r.AccountID || ev.Version != a.Version+1 {
			return ledger.Reject(ledger.CodeInternal, "position %d: event of %s version %d does not follow %s version %d",
				r.Position, ev.AccountID, ev.Version, r.AccountID, a.Version)
		}
		ev.Position = r.Position
		st.accounts[r.AccountID], st.position = ledger.Evolve(a, ev), r.Position
		return nil
	})
	if err != nil && !errors.Is(err, errPastBound) {
		var le *ledger.Error
		if errors.As(err, &le) {
			return st, 0, le
		}
		return st, 0, ledger.Reject(ledger.CodeUnavailable, "read the stream: %v", err)
	}
	due := 0
	for id, a := range st.accounts {
		for _, p := range ledger.DueEvents(a, at.UTC()) {
			a = ledger.Evolve(a, events.Event{Envelope: events.Envelope{AccountID: id, Version: a.Version}, Data: p})
			due++
		}
		st.accounts[id] = a
	}
	st.ids = sortedIDs(st.accounts)
	return st, due, nil
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
		st, due, err := foldFleetAsOf(ctx, q.stream, at)
		release()
		if err != nil {
			return nil, err
		}
		return renderFleet(name, pastFleet(st, q.cat), f, &Past{AsOf: at.UTC(), UnrecordedEvents: due})
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
