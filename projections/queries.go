package projections

import (
	"context"
	"errors"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/creditledger/creditledger/ledger"
)

// Query names; NATS subjects are ledger.query.<name>, HTTP routes /v1/accounts/{id}/<name>.
const (
	QueryBalance  = "balance"
	QueryLicenses = "licenses"
	QuerySwitches = "switches"
	// QuerySubjectPrefix is the NATS subject prefix of the query endpoints.
	QuerySubjectPrefix = "ledger.query"
	// DefaultMaxWait bounds how long a min_position query waits for the projection.
	DefaultMaxWait = 5 * time.Second
)

// QueryRequest is the body of every query.
type QueryRequest struct {
	AccountID   string `json:"account_id"`
	MinPosition uint64 `json:"min_position,omitempty"`
	// Month (YYYY-MM) selects one month of the usage read model.
	Month string `json:"month,omitempty"`
	// AsOf (RFC 3339) asks for the read model as it was at that time (see FoldAsOf).
	AsOf string `json:"as_of,omitempty"`

	// The fleet queries (fleet.go) page with Cursor (a next_cursor) and Limit, and filter:
	// Prefix (account id prefix), Status, BillingPath, Source, Shortfall and ExpiringBefore
	// (RFC 3339) on accounts, Active on payg_contracts.
	Cursor         string `json:"cursor,omitempty"`
	Limit          int    `json:"limit,omitempty"`
	Prefix         string `json:"prefix,omitempty"`
	Status         string `json:"status,omitempty"`
	BillingPath    string `json:"billing_path,omitempty"`
	Source         string `json:"source,omitempty"`
	Shortfall      *bool  `json:"shortfall,omitempty"`
	ExpiringBefore string `json:"expiring_before,omitempty"`
	Active         *bool  `json:"active,omitempty"`
}

// Queries answers read-model queries; NATS and HTTP share it so both answer identically.
type Queries struct {
	proj    *Projector
	cat     ledger.Catalogue
	maxWait time.Duration
	history AccountHistory
	stream  StreamHistory
	// reads bounds the as_of reads of one account running at once (readlimit.go).
	reads *ReadLimit
	// fleetFold is the one slot of the fleet as_of folds (fleet_asof.go).
	fleetFold chan struct{}
}

// NewQueries serves the projector's read models.
func NewQueries(p *Projector, cat ledger.Catalogue, maxWait time.Duration) (*Queries, error) {
	if p == nil {
		return nil, errors.New("projections: nil projector")
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	return &Queries{proj: p, cat: cat, maxWait: maxWait, fleetFold: make(chan struct{}, 1), reads: defaultReadLimit()}, nil
}

// DecodeRequest parses a NATS query body strictly.
func DecodeRequest(data []byte) (QueryRequest, error) {
	var q QueryRequest
	if err := jsonv2.Unmarshal(data, &q, jsonv2.RejectUnknownMembers(true)); err != nil {
		return q, ledger.Reject(ledger.CodeInvalidArgument, "malformed query: %v", err)
	}
	return q, nil
}

// Answer runs one query: it validates, waits for min_position (read-your-writes), then renders.
func (q *Queries) Answer(ctx context.Context, name string, r QueryRequest) (any, error) {
	if isFleetQuery(name) {
		return q.answerFleet(ctx, name, r) // fleet_asof.go
	}
	if r.Cursor != "" || r.Limit != 0 || r.Prefix != "" || r.Status != "" || r.BillingPath != "" || r.Source != "" ||
		r.Shortfall != nil || r.ExpiringBefore != "" || r.Active != nil {
		return nil, ledger.Reject(ledger.CodeInvalidArgument, "the %s query reads one account: paging and fleet filters do not apply", name)
	}
	if !ledger.ValidID(r.AccountID) {
		return nil, ledger.Reject(ledger.CodeInvalidArgument, "account_id must be 1-64 characters of A-Za-z0-9_-")
	}
	if r.AsOf != "" {
		return q.answerAsOf(ctx, name, r)
	}
	if err := q.waitFor(ctx, r.MinPosition); err != nil {
		return nil, err
	}
	var out any
	var err error
	found := q.proj.view(r.AccountID, func(a ledger.Account, pos uint64) {
		switch name {
		case QueryBalance:
			out = BalanceOf(a, pos)
		case QueryLicenses:
			out = LicensesOf(a, pos)
		case QuerySwitches:
			out = SwitchesOf(a, pos, q.cat)
		case QueryUsage, QueryAccount, QueryContracts: // usage.go, account.go, fleet_views.go
			out, err = paygView(name, a, pos, r, endOfTime)
		default:
			err = ledger.Reject(ledger.CodeInvalidArgument, "unknown query %q", name)
		}
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ledger.Reject(ledger.CodeNotFound, "account %s not found", r.AccountID)
	}
	return out, nil
}
