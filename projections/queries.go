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
}

// Queries answers read-model queries; NATS and HTTP share it so both answer identically.
type Queries struct {
	proj    *Projector
	cat     ledger.Catalogue
	maxWait time.Duration
	history AccountHistory
}

// NewQueries serves the projector's read models.
func NewQueries(p *Projector, cat ledger.Catalogue, maxWait time.Duration) (*Queries, error) {
	if p == nil {
		return nil, errors.New("projections: nil projector")
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	return &Queries{proj: p, cat: cat, maxWait: maxWait}, nil
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
	if !ledger.ValidID(r.AccountID) {
		return nil, ledger.Reject(ledger.CodeInvalidArgument, "account_id must be 1-64 characters of A-Za-z0-9_-")
	}
	if r.AsOf != "" {
		return q.answerAsOf(ctx, name, r)
	}
	if r.MinPosition > 0 {
		wctx, cancel := context.WithTimeout(ctx, q.maxWait)
		err := q.proj.WaitFor(wctx, r.MinPosition)
		cancel()
		if err != nil {
			return nil, ledger.Reject(ledger.CodeUnavailable, "projection is at position %d and did not reach %d within %s",
				q.proj.Position(), r.MinPosition, q.maxWait)
		}
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
		case QueryUsage, QueryAccount: // hook: usage.go, account.go (issue 5)
			out, err = paygView(name, a, pos, r)
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
