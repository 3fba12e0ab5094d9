package projections

import (
	"time"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// The read models' answer types live in api, shared with the Go client (ledgerclient).
type (
	AccountSubscription = api.AccountSubscription
	AccountView         = api.AccountView
)

// QueryAccount is the account read model: NATS ledger.query.account, HTTP GET /v1/accounts/{id}.
const QueryAccount = "account"

// AccountOf renders the account read model from an account state.
func AccountOf(a ledger.Account, position uint64) AccountView {
	v := AccountView{
		OK: true, AccountID: a.ID, Position: position, Version: a.Version,
		Status: a.Status(), BillingPath: a.BillingPath(), PreviousSubscriptionID: a.LapsedSubscription.ID,
	}
	if s := a.Subscription; s.ID != "" {
		v.Subscription = &AccountSubscription{SubscriptionID: s.ID, Marketplace: s.Marketplace, LinkedAt: s.LinkedAt.UTC()}
	}
	v.GraceUntil = optionalTime(a.GraceUntil)
	v.ExpiredAt = optionalTime(a.ExpiredAt)
	return v
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// paygView renders the usage, account and contracts read models; at is the moment the
// contract "in effect" is taken at. Answer and PastView call it.
func paygView(name string, a ledger.Account, position uint64, r QueryRequest, at time.Time) (any, error) {
	switch name {
	case QueryUsage:
		return UsageOf(a, position, r.Month)
	case QueryContracts:
		return ContractsOf(a, position, at), nil
	default:
		return AccountOf(a, position), nil
	}
}

// queryRoute is the HTTP route of a query: the account read model is the account resource
// itself, every other read model a sub-resource.
func queryRoute(name string) string {
	if name == QueryAccount {
		return "GET /v1/accounts/{id}"
	}
	return "GET /v1/accounts/{id}/" + name
}
