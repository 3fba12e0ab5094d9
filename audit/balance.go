package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// Errors of point-in-time balances.
var (
	// ErrHistoryBroken means an account's stored chain fails verification, so nothing is derived
	// from it.
	ErrHistoryBroken = errors.New("account history fails verification")
	// ErrNoHistory means the account had no events at the bound.
	ErrNoHistory = errors.New("account had no events")
)

// PointInTime is one account's read models at a past time or stream position, folded by the
// auditor from the stored events with the domain's own ledger.Evolve (projections.FoldAsOf).
type PointInTime struct {
	AccountID string `json:"account_id"`
	// AsOf or AtPosition is the bound asked for.
	AsOf       *time.Time `json:"as_of,omitempty"`
	AtPosition uint64     `json:"at_position,omitempty"`
	// Position and Version are those of the account's last stored event folded.
	Position uint64 `json:"position"`
	Version  uint64 `json:"version"`
	// UnrecordedEvents counts renewals and expiries that were due at AsOf and are applied
	// although the stream records them later (or not yet).
	UnrecordedEvents int                  `json:"unrecorded_events"`
	Balance          projections.Balance  `json:"balance"`
	Licenses         projections.Licenses `json:"licenses"`
	BillingModels    projections.Switches `json:"billing_models"`
}

// BalanceAt reads one account's events straight from the stream, verifies its chain (hashes,
// versions, links), and folds it up to the bound: at.Time (then what was due at that time is
// applied, see projections.FoldAsOf) or at.Position (exactly the state the live projection had
// at that position).
func BalanceAt(ctx context.Context, src *Source, accountID string, at projections.AsOf, cat ledger.Catalogue) (PointInTime, error) {
	subjects, err := src.Subjects()
	if err != nil {
		return PointInTime{}, err
	}
	chain := NewChain()
	chain.partial = true
	chain.SetSubjects(subjects)
	var recs []ledger.Record
	var broken []Finding
	_, err = src.Scan(ctx, Filter{AccountID: accountID, ToPosition: at.Position}, func(m Message) error {
		broken = append(broken, chain.Apply(m)...)
		recs = append(recs, ledger.Record{AccountID: accountID, Data: m.Data, Position: m.Position})
		return nil
	})
	if err != nil {
		return PointInTime{}, err
	}
	if len(broken) > 0 {
		return PointInTime{}, fmt.Errorf("%w: %s", ErrHistoryBroken, broken[0])
	}
	st, err := projections.FoldAsOf(accountID, recs, at)
	if err != nil {
		return PointInTime{}, fmt.Errorf("%w: %v", ErrHistoryBroken, err)
	}
	if st.Events == 0 {
		return PointInTime{}, fmt.Errorf("%w: %s at %s", ErrNoHistory, accountID, describeBound(at))
	}
	out := PointInTime{
		AccountID: accountID, AtPosition: at.Position, Position: st.Position, Version: st.Account.Version,
		UnrecordedEvents: len(st.Due),
		Balance:          projections.BalanceOf(st.Account, st.Position),
		Licenses:         projections.LicensesOf(st.Account, st.Position),
		BillingModels:    projections.SwitchesOf(st.Account, st.Position, cat),
	}
	if at.HasTime() {
		t := at.Time.UTC()
		out.AsOf = &t
	}
	return out, nil
}

func describeBound(at projections.AsOf) string {
	if at.HasTime() {
		return at.Time.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("position %d", at.Position)
}
