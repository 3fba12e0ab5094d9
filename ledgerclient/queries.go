package ledgerclient

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/api"
)

// QuerySubjectPrefix is the subject prefix of the queries: ledger.query.<name>.
const QuerySubjectPrefix = "ledger.query"

// queryRequest is the body of a single-account query.
type queryRequest struct {
	AccountID   string `json:"account_id"`
	MinPosition uint64 `json:"min_position,omitempty"`
	Month       string `json:"month,omitempty"`
	AsOf        string `json:"as_of,omitempty"`
}

// QueryOption adjusts a query.
type QueryOption func(*queryRequest)

// MinPosition makes the query wait (a bounded time, then unavailable) until the read model has
// applied position p: pass a command Result's Position to read your own write.
func MinPosition(p uint64) QueryOption { return func(q *queryRequest) { q.MinPosition = p } }

// AsOf asks for the read model as it was at t (where the query supports it).
func AsOf(t time.Time) QueryOption {
	return func(q *queryRequest) { q.AsOf = t.UTC().Format(time.RFC3339Nano) }
}

// Month selects one calendar month (UTC, YYYY-MM) of the usage query.
func Month(m string) QueryOption { return func(q *queryRequest) { q.Month = m } }

// Balance answers the balance query.
func (c *Client) Balance(ctx context.Context, accountID string, opts ...QueryOption) (api.Balance, error) {
	var out api.Balance
	return out, c.Query(ctx, "balance", newQuery(accountID, opts), &out)
}

// Licenses answers the licenses query.
func (c *Client) Licenses(ctx context.Context, accountID string, opts ...QueryOption) (api.Licenses, error) {
	var out api.Licenses
	return out, c.Query(ctx, "licenses", newQuery(accountID, opts), &out)
}

// Switches answers the switches query (billing models and their switch history).
func (c *Client) Switches(ctx context.Context, accountID string, opts ...QueryOption) (api.Switches, error) {
	var out api.Switches
	return out, c.Query(ctx, "switches", newQuery(accountID, opts), &out)
}

// Usage answers the usage query (pay-as-you-go usage by month).
func (c *Client) Usage(ctx context.Context, accountID string, opts ...QueryOption) (api.Usage, error) {
	var out api.Usage
	return out, c.Query(ctx, "usage", newQuery(accountID, opts), &out)
}

// Account answers the account query (status, billing path, subscription, grace period).
func (c *Client) Account(ctx context.Context, accountID string, opts ...QueryOption) (api.AccountView, error) {
	var out api.AccountView
	return out, c.Query(ctx, "account", newQuery(accountID, opts), &out)
}

func newQuery(accountID string, opts []QueryOption) *queryRequest {
	q := &queryRequest{AccountID: accountID}
	for _, o := range opts {
		o(q)
	}
	return q
}

// Query sends any query by name with body (encoded as JSON) and decodes the answer into out.
// A rejection is a *Error.
func (c *Client) Query(ctx context.Context, name string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode query %s: %w", name, err)
	}
	return c.do(ctx, QuerySubjectPrefix+"."+name, data, func(msg *nats.Msg) error {
		if err := json.Unmarshal(msg.Data, out); err != nil {
			return fmt.Errorf("decode answer of %s: %w", name, err)
		}
		return nil
	})
}

// Contracts answers the contracts query (the account's PAYG contracts and their rates).
func (c *Client) Contracts(ctx context.Context, accountID string, opts ...QueryOption) (api.Contracts, error) {
	var out api.Contracts
	return out, c.Query(ctx, "contracts", newQuery(accountID, opts), &out)
}

// Accounts answers a page of the account list (q: filters, cursor, limit).
func (c *Client) Accounts(ctx context.Context, q api.FleetQuery) (api.AccountList, error) {
	var out api.AccountList
	return out, c.Query(ctx, "accounts", q, &out)
}

// Totals answers the fleet totals (q: MinPosition or AsOf only).
func (c *Client) Totals(ctx context.Context, q api.FleetQuery) (api.Totals, error) {
	var out api.Totals
	return out, c.Query(ctx, "totals", q, &out)
}

// PaygCharges answers a page of one month's PAYG charges and the month's totals.
func (c *Client) PaygCharges(ctx context.Context, month string, q api.FleetQuery) (api.PaygCharges, error) {
	var out api.PaygCharges
	q.Month = month
	return out, c.Query(ctx, "payg_charges", q, &out)
}

// PaygContracts answers a page of the accounts holding PAYG contracts, with their rates.
func (c *Client) PaygContracts(ctx context.Context, q api.FleetQuery) (api.PaygContracts, error) {
	var out api.PaygContracts
	return out, c.Query(ctx, "payg_contracts", q, &out)
}
