package api

import (
	"time"

	"github.com/shopspring/decimal"
)

// The answers of the read-model queries (NATS ledger.query.<name>, HTTP /v1/accounts/{id}/...).
// The projections build them; the Go client decodes them; both use these types.

// Balance is the balance read model of one account.
type Balance struct {
	OK               bool                       `json:"ok"`
	AccountID        string                     `json:"account_id"`
	Position         uint64                     `json:"position"`
	TotalCredits     decimal.Decimal            `json:"total_credits"`
	AllocatedCredits decimal.Decimal            `json:"allocated_credits"`
	AvailableCredits decimal.Decimal            `json:"available_credits"`
	Shortfall        decimal.Decimal            `json:"shortfall"`
	Allocations      map[string]decimal.Decimal `json:"allocations"`
}

// LicenseItem is one row of the license list.
type LicenseItem struct {
	LicenseID       string          `json:"license_id"`
	ParentLicenseID *string         `json:"parent_license_id"`
	Source          string          `json:"source"`
	Status          string          `json:"status"`
	Credits         decimal.Decimal `json:"credits"`
	AutoRenew       bool            `json:"auto_renew"`
	PurchasedAt     time.Time       `json:"purchased_at"`
	ActivatedAt     *time.Time      `json:"activated_at"`
	ExpiresAt       time.Time       `json:"expires_at"`
}

// Licenses is the license list of one account, in purchase order.
type Licenses struct {
	OK        bool          `json:"ok"`
	AccountID string        `json:"account_id"`
	Position  uint64        `json:"position"`
	Licenses  []LicenseItem `json:"licenses"`
}

// SwitchEntry is one billing-model change.
type SwitchEntry struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}

// FeatureSwitches is a feature's billing model and switch history.
type FeatureSwitches struct {
	BillingModel        string        `json:"billing_model"`
	NextSwitchAllowedAt *time.Time    `json:"next_switch_allowed_at"`
	History             []SwitchEntry `json:"history"`
}

// Switches is the billing-switch history of one account: every PAYG-eligible feature, plus any
// other feature with history.
type Switches struct {
	OK        bool                       `json:"ok"`
	AccountID string                     `json:"account_id"`
	Position  uint64                     `json:"position"`
	Features  map[string]FeatureSwitches `json:"features"`
}

// UsageFeature is one feature's usage in one month.
type UsageFeature struct {
	Unit        string          `json:"unit"`
	Quantity    decimal.Decimal `json:"quantity"`
	Amount      string          `json:"amount"`
	AmountExact decimal.Decimal `json:"amount_exact"`
	Records     int             `json:"records"`
}

// UsageTotal is the total of one month.
type UsageTotal struct {
	Amount      string          `json:"amount"`
	AmountExact decimal.Decimal `json:"amount_exact"`
	Records     int             `json:"records"`
}

// UsageMonth is one calendar month (UTC, by occurred_at) of usage in one currency.
type UsageMonth struct {
	Month    string                  `json:"month"`
	Currency string                  `json:"currency"`
	Features map[string]UsageFeature `json:"features"`
	Total    UsageTotal              `json:"total"`
}

// Usage is the usage read model of one account: every month with usage, oldest first, or just
// the month asked for (with zero totals when it had none).
type Usage struct {
	OK        bool         `json:"ok"`
	AccountID string       `json:"account_id"`
	Position  uint64       `json:"position"`
	Rounding  string       `json:"rounding"`
	Months    []UsageMonth `json:"months"`
}

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
