package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// AccountHistory reads one account's stored events in stream order; the JetStream event store
// (jetstore.Store) implements it.
type AccountHistory interface {
	ReadAccount(ctx context.Context, accountID string) ([]ledger.Record, error)
}

// AsOf bounds a point-in-time fold. A zero field does not bound, except a Time marked TimeSet.
type AsOf struct {
	// Time keeps the events that occurred at or before it, then applies the renewals and
	// expiries that were due at Time (see FoldAsOf).
	Time time.Time
	// TimeSet makes Time a bound even when it is the zero time (0001-01-01T00:00:00Z): a time
	// before every event, answered like any other.
	TimeSet bool
	// Position keeps the events stored at or before this stream position, exactly as the live
	// projection had them at that position.
	Position uint64
}

// HasTime reports whether the fold is bounded by a time.
func (a AsOf) HasTime() bool { return a.TimeSet || !a.Time.IsZero() }

// PastState is an account folded to a point in time.
type PastState struct {
	Account ledger.Account
	// Position is the stream position of the last stored event folded (0: none).
	Position uint64
	// Events is the number of stored events folded.
	Events int
	// Due are the renewals and expiries that were due at the time bound but are recorded
	// later in the stream, or not yet: they are applied to Account.
	Due []events.Payload
}

// FoldAsOf folds one account's records (stream order) with ledger.Evolve, the service's own
// fold, up to the bound: stored events whose position is within Position and whose occurred_at
// is within Time. The stream is in time order (one writer stamps each append with its clock), so
// the fold stops at the first event past the bound.
//
// With a time bound it then applies ledger.DueEvents at that time: a license whose term ended at
// or before T was renewed or expired at T by the domain rules, even if the expiry processor
// appended the event a few seconds later (or has not run yet). The balance at T therefore never
// counts credits that had already lapsed, matching what a command decided at T would have seen.
func FoldAsOf(accountID string, recs []ledger.Record, at AsOf) (PastState, error) {
	st := PastState{Account: ledger.NewAccount(accountID)}
	for _, r := range recs {
		if at.Position > 0 && r.Position > at.Position {
			break
		}
		ev, err := events.Decode(r.Data)
		if err != nil {
			return st, fmt.Errorf("position %d: %w", r.Position, err)
		}
		if at.HasTime() && ev.OccurredAt.After(at.Time) {
			break
		}
		if ev.AccountID != accountID || ev.Version != st.Account.Version+1 {
			return st, fmt.Errorf("position %d: event of %s version %d does not follow %s version %d",
				r.Position, ev.AccountID, ev.Version, accountID, st.Account.Version)
		}
		ev.Position = r.Position
		st.Account = ledger.Evolve(st.Account, ev)
		st.Position, st.Events = r.Position, st.Events+1
	}
	if !at.HasTime() || st.Events == 0 {
		return st, nil
	}
	st.Due = ledger.DueEvents(st.Account, at.Time.UTC())
	for _, p := range st.Due {
		// The version stays the stored one: these events are not in the stream at this point.
		st.Account = ledger.Evolve(st.Account, events.Event{Envelope: events.Envelope{AccountID: accountID, Version: st.Account.Version}, Data: p})
	}
	return st, nil
}

// PastBalance is the balance read model at a past time.
type PastBalance struct {
	Balance
	Past
}

// PastLicenses is the license list at a past time.
type PastLicenses struct {
	Licenses
	Past
}

// PastSwitches is the billing-switch history at a past time.
type PastSwitches struct {
	Switches
	Past
}

// PastUsage is the usage read model at a past time.
type PastUsage struct {
	Usage
	Past
}

// PastAccount is the account read model at a past time.
type PastAccount struct {
	AccountView
	Past
}

// PastContracts is the PAYG contracts of an account at a past time.
type PastContracts struct {
	Contracts
	Past
}

// PastView renders a read model from a past state; position is the last stored event folded.
// month applies to the usage read model.
func PastView(name string, st PastState, asOf time.Time, cat ledger.Catalogue, month string) (any, error) {
	p := Past{AsOf: asOf.UTC(), UnrecordedEvents: len(st.Due)}
	switch name {
	case QueryBalance:
		return PastBalance{BalanceOf(st.Account, st.Position), p}, nil
	case QueryLicenses:
		return PastLicenses{LicensesOf(st.Account, st.Position), p}, nil
	case QuerySwitches:
		return PastSwitches{SwitchesOf(st.Account, st.Position, cat), p}, nil
	case QueryUsage:
		u, err := UsageOf(st.Account, st.Position, month)
		if err != nil {
			return nil, err
		}
		return PastUsage{u, p}, nil
	case QueryAccount:
		return PastAccount{AccountOf(st.Account, st.Position), p}, nil
	case QueryContracts:
		return PastContracts{ContractsOf(st.Account, st.Position, asOf), p}, nil
	default:
		return nil, ledger.Reject(ledger.CodeInvalidArgument, "unknown query %q", name)
	}
}

// UseHistory lets the queries answer as_of from the account's stored events. Call it before the
// queries are served.
// When h can also read the whole stream (StreamHistory), the fleet queries answer as_of too.
func (q *Queries) UseHistory(h AccountHistory) {
	q.history = h
	if s, ok := h.(StreamHistory); ok {
		q.stream = s
	}
}

// LimitReads bounds the as_of reads of one account with l, which the dashboard may share (by
// default the queries have a limit of their own, DefaultAccountReads). Call it before the
// queries are served.
func (q *Queries) LimitReads(l *ReadLimit) {
	if l != nil {
		q.reads = l
	}
}

// answerAsOf answers a query with as_of: the account's stored events folded up to that time.
// min_position does not apply: the answer is read from the stream, not the projection.
func (q *Queries) answerAsOf(ctx context.Context, name string, r QueryRequest) (any, error) {
	at, err := parseAsOf(r.AsOf)
	if err != nil {
		return nil, err
	}
	if _, err := ParseUsageMonth(r.Month); err != nil {
		return nil, err
	}
	if q.history == nil {
		return nil, ledger.Reject(ledger.CodeUnavailable, "as_of queries are not served here: no event store")
	}
	recs, err := q.reads.ReadAccount(ctx, q.history, r.AccountID)
	var busy *ledger.Error
	if errors.As(err, &busy) {
		return nil, busy
	}
	if err != nil {
		return nil, ledger.Reject(ledger.CodeUnavailable, "read the history of %s: %v", r.AccountID, err)
	}
	st, err := FoldAsOf(r.AccountID, recs, AsOf{Time: at, TimeSet: true})
	if err != nil {
		return nil, ledger.Reject(ledger.CodeInternal, "history of %s cannot be folded: %v", r.AccountID, err)
	}
	if st.Events == 0 {
		return nil, ledger.Reject(ledger.CodeNotFound, "account %s had no events at %s", r.AccountID, at.UTC().Format(time.RFC3339Nano))
	}
	return PastView(name, st, at, q.cat, r.Month)
}
