package projections

import (
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// QueryAccount is the account read model: NATS ledger.query.account, HTTP GET /v1/accounts/{id}.
const QueryAccount = "account"

// AccountSubscription is the marketplace subscription linked to an account.
type AccountSubscription struct {
	SubscriptionID string    `json:"subscription_id"`
	Marketplace    string    `json:"marketplace"`
	LinkedAt       time.Time `json:"linked_at"`
}

// AccountView is the account read model: its status (active, grace, expired), how it pays
// (marketplace, annual, none), the linked subscription and the grace period.
type AccountView struct {
	OK           bool                 `json:"ok"`
	AccountID    string               `json:"account_id"`
	Position     uint64               `json:"position"`
	Version      uint64               `json:"version"`
	Status       string               `json:"status"`
	BillingPath  string               `json:"billing_path"`
	Subscription *AccountSubscription `json:"subscription"`
	// GraceUntil is the end of the grace period that began when the account lost its
	// subscription (null if it never lost one or linked a new one).
	GraceUntil *time.Time `json:"grace_until"`
	// ExpiredAt is when the account entered the "trial or subscription expired" state.
	ExpiredAt *time.Time `json:"expired_at"`
	// PreviousSubscriptionID is the subscription the account lost most recently.
	PreviousSubscriptionID string `json:"previous_subscription_id,omitempty"`
}

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

// paygView renders the read models of issue 5 (usage, account); Answer calls it.
func paygView(name string, a ledger.Account, position uint64, r QueryRequest) (any, error) {
	if name == QueryUsage {
		return UsageOf(a, position, r.Month)
	}
	return AccountOf(a, position), nil
}

// queryRoute is the HTTP route of a query: the account read model is the account resource
// itself, every other read model a sub-resource.
func queryRoute(name string) string {
	if name == QueryAccount {
		return "GET /v1/accounts/{id}"
	}
	return "GET /v1/accounts/{id}/" + name
}
