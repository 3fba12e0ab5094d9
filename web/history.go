package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// HistoryPoint is the account's credits right after one event.
type HistoryPoint struct {
	Position         uint64          `json:"position"`
	Version          uint64          `json:"version"`
	At               time.Time       `json:"at"`
	Type             string          `json:"type"`
	LicenseID        string          `json:"license_id,omitempty"`
	Feature          string          `json:"feature,omitempty"`
	TotalCredits     decimal.Decimal `json:"total_credits"`
	AllocatedCredits decimal.Decimal `json:"allocated_credits"`
	AvailableCredits decimal.Decimal `json:"available_credits"`
	Shortfall        decimal.Decimal `json:"shortfall"`
}

// History is the credits-over-time series of one account: one point per event, in order.
type History struct {
	OK        bool   `json:"ok"`
	AccountID string `json:"account_id"`
	// Position is the stream position of the last event folded (0 when none is).
	Position uint64 `json:"position"`
	// AsOf echoes the as_of the series was cut at, if one was asked for.
	AsOf *time.Time `json:"as_of,omitempty"`
	// Truncated says the oldest points were left off to keep the answer within MaxHistoryPoints.
	Truncated bool           `json:"truncated,omitempty"`
	Points    []HistoryPoint `json:"points"`
}

// historyRequest is a parsed GET /v1/accounts/{id}/history.
type historyRequest struct {
	accountID   string
	minPosition uint64
	asOf        *time.Time
}

func parseHistoryRequest(r *http.Request) (historyRequest, error) {
	req := historyRequest{accountID: r.PathValue("id")}
	if !ledger.ValidID(req.accountID) {
		return req, ledger.Reject(ledger.CodeInvalidArgument, "account_id must be 1-64 characters of A-Za-z0-9_-")
	}
	q := r.URL.Query()
	if s := q.Get("min_position"); s != "" {
		p, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return req, ledger.Reject(ledger.CodeInvalidArgument, "min_position must be a non-negative integer")
		}
		req.minPosition = p
	}
	if s := q.Get("as_of"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return req, ledger.Reject(ledger.CodeInvalidArgument, "as_of must be an RFC 3339 time")
		}
		t = t.UTC()
		req.asOf = &t
	}
	return req, nil
}

func (d *Dashboard) serveHistory(w http.ResponseWriter, r *http.Request) {
	req, recs, ok := d.accountEvents(w, r)
	if !ok {
		return
	}
	h, err := FoldHistory(req.accountID, recs, req.asOf)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, h)
}

// accountEvents reads the stored events of the account a history or log request names, once the
// projection has reached its min_position; on failure it has written the error and reports false.
func (d *Dashboard) accountEvents(w http.ResponseWriter, r *http.Request) (historyRequest, []ledger.Record, bool) {
	req, err := parseHistoryRequest(r)
	if err != nil {
		writeError(w, err)
		return req, nil, false
	}
	if err := d.waitFor(r.Context(), req.minPosition); err != nil {
		writeError(w, err)
		return req, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyReadTimeout)
	defer cancel()
	recs, err := d.reads.ReadAccount(ctx, d.events, req.accountID)
	if busy := (*ledger.Error)(nil); errors.As(err, &busy) {
		writeError(w, busy) // no turn in time: 503 with Retry-After
		return req, nil, false
	}
	if err != nil {
		writeError(w, ledger.Reject(ledger.CodeUnavailable, "read the events of %s: %v", req.accountID, err))
		return req, nil, false
	}
	if len(recs) == 0 {
		writeError(w, ledger.Reject(ledger.CodeNotFound, "account %s not found", req.accountID))
		return req, nil, false
	}
	return req, recs, true
}

// FoldHistory folds an account's stored events, in order, with ledger.Evolve and records the
// credits after each one. With asOf set it stops at the first event that occurred after asOf.
func FoldHistory(accountID string, recs []ledger.Record, asOf *time.Time) (History, error) {
	h := History{OK: true, AccountID: accountID, AsOf: asOf, Points: make([]HistoryPoint, 0, len(recs))}
	a := ledger.NewAccount(accountID)
	for _, rec := range recs {
		ev, err := events.Decode(rec.Data)
		if err != nil {
			return History{}, ledger.Reject(ledger.CodeInternal, "event at position %d of %s: %v", rec.Position, accountID, err)
		}
		if ev.AccountID != accountID || ev.Version != a.Version+1 {
			return History{}, ledger.Reject(ledger.CodeInternal, "event at position %d is %s version %d, expected %s version %d",
				rec.Position, ev.AccountID, ev.Version, accountID, a.Version+1)
		}
		if asOf != nil && ev.OccurredAt.After(*asOf) {
			break
		}
		ev.Position = rec.Position
		a = ledger.Evolve(a, ev)
		h.Points = append(h.Points, point(a, ev))
		h.Position = rec.Position
	}
	if n := len(h.Points); n > MaxHistoryPoints {
		h.Points = append([]HistoryPoint(nil), h.Points[n-MaxHistoryPoints:]...)
		h.Truncated = true
	}
	return h, nil
}

func point(a ledger.Account, ev events.Event) HistoryPoint {
	p := HistoryPoint{
		Position: ev.Position, Version: ev.Version, At: ev.OccurredAt.UTC(), Type: ev.Type,
		TotalCredits: a.TotalCredits(), AllocatedCredits: a.AllocatedCredits(),
		AvailableCredits: a.AvailableCredits(), Shortfall: a.Shortfall(),
	}
	switch e := ev.Data.(type) {
	case events.LicensePurchased:
		p.LicenseID = e.LicenseID
	case events.LicenseActivated:
		p.LicenseID = e.LicenseID
	case events.ContractUpgraded:
		p.LicenseID = e.LicenseID
	case events.AutoRenewSet:
		p.LicenseID = e.LicenseID
	case events.LicenseRenewed:
		p.LicenseID = e.LicenseID
	case events.LicenseExpired:
		p.LicenseID = e.LicenseID
	case events.CreditsAllocated:
		p.Feature = e.Feature
	case events.CreditsReleased:
		p.Feature = e.Feature
	case events.BillingModelSwitched:
		p.Feature = e.Feature
	}
	return p
}
