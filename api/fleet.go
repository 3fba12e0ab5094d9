package api

import (
	"time"

	"github.com/shopspring/decimal"
)

// The answers of the fleet read models (NATS ledger.query.accounts|totals|payg_charges|
// payg_contracts, HTTP /v1/accounts, /v1/totals, /v1/payg/...) and of the contracts query; the
// projections build them, the Go client decodes them.

// AccountSummary is one row of the account list.
type AccountSummary struct {
	AccountID        string          `json:"account_id"`
	Version          uint64          `json:"version"`
	Status           string          `json:"status"`
	BillingPath      string          `json:"billing_path"`
	Sources          []string        `json:"sources"`
	TotalCredits     decimal.Decimal `json:"total_credits"`
	AllocatedCredits decimal.Decimal `json:"allocated_credits"`
	AvailableCredits decimal.Decimal `json:"available_credits"`
	Shortfall        decimal.Decimal `json:"shortfall"`
	// NextExpiryAt is the earliest end of term among active licenses that will not renew
	// (auto-renew off): when credits will lapse unless someone acts.
	NextExpiryAt *time.Time `json:"next_expiry_at"`
	GraceUntil   *time.Time `json:"grace_until"`
	ExpiredAt    *time.Time `json:"expired_at"`
	// PaygContractID is the PAYG contract in effect (the last one activated), if any.
	PaygContractID *string `json:"payg_contract_id"`
}

// AccountList is a page of the account list, in account id order.
type AccountList struct {
	OK       bool             `json:"ok"`
	Position uint64           `json:"position"`
	Accounts []AccountSummary `json:"accounts"`
	// NextCursor, when set, asks for the next page (pass it as cursor with the same filters).
	NextCursor string `json:"next_cursor,omitempty"`
	*Past
}

// CreditTotals are credit figures summed over accounts.
type CreditTotals struct {
	// Sold is the credits of every license item ever purchased (increases included), whatever
	// its status now.
	Sold decimal.Decimal `json:"sold"`
	// Active is the pools: the credits of every active license item.
	Active    decimal.Decimal `json:"active"`
	Allocated decimal.Decimal `json:"allocated"`
	Available decimal.Decimal `json:"available"`
	Shortfall decimal.Decimal `json:"shortfall"`
}

// SourceTotals are one license source's items and credits.
type SourceTotals struct {
	Licenses       int             `json:"licenses"`
	ActiveLicenses int             `json:"active_licenses"`
	CreditsSold    decimal.Decimal `json:"credits_sold"`
	CreditsActive  decimal.Decimal `json:"credits_active"`
	Accounts       int             `json:"accounts"`
}

// FeatureTotals are one feature's allocations and billing models across accounts. Allocations
// draw on an account's one pool, not on a source, so they are summed by feature only.
type FeatureTotals struct {
	CreditsAllocated   decimal.Decimal `json:"credits_allocated"`
	AccountsAllocating int             `json:"accounts_allocating"`
	AccountsOnPayg     int             `json:"accounts_on_payg"`
}

// Totals is the fleet totals read model.
type Totals struct {
	OK       bool   `json:"ok"`
	Position uint64 `json:"position"`
	Accounts int    `json:"accounts"`
	// ByStatus counts accounts by status (active, grace, expired); InGrace and Expired repeat
	// two of them for dashboards.
	ByStatus      map[string]int           `json:"by_status"`
	InGrace       int                      `json:"in_grace"`
	Expired       int                      `json:"expired"`
	WithShortfall int                      `json:"with_shortfall"`
	ByBillingPath map[string]int           `json:"by_billing_path"`
	Credits       CreditTotals             `json:"credits"`
	BySource      map[string]SourceTotals  `json:"by_source"`
	ByFeature     map[string]FeatureTotals `json:"by_feature"`
	*Past
}

// PaygChargeRow is one account's PAYG charges in the month, in one currency.
type PaygChargeRow struct {
	AccountID   string                  `json:"account_id"`
	Currency    string                  `json:"currency"`
	Amount      string                  `json:"amount"`
	AmountExact decimal.Decimal         `json:"amount_exact"`
	Records     int                     `json:"records"`
	Features    map[string]UsageFeature `json:"features"`
}

// PaygChargeTotal is the month's charges over every account that matches, in one currency.
type PaygChargeTotal struct {
	Currency    string          `json:"currency"`
	Amount      string          `json:"amount"`
	AmountExact decimal.Decimal `json:"amount_exact"`
	Records     int             `json:"records"`
	Accounts    int             `json:"accounts"`
}

// PaygCharges is the PAYG charges read model of one month: a page of accounts with usage in it
// and the month's totals (over every matching account, not only the page).
type PaygCharges struct {
	OK         bool              `json:"ok"`
	Position   uint64            `json:"position"`
	Month      string            `json:"month"`
	Rounding   string            `json:"rounding"`
	Accounts   []PaygChargeRow   `json:"accounts"`
	Totals     []PaygChargeTotal `json:"totals"`
	NextCursor string            `json:"next_cursor,omitempty"`
	*Past
}

// ContractView is one PAYG contract and its rates.
type ContractView struct {
	ContractID string `json:"contract_id"`
	// Status is pending (purchased) or active.
	Status string `json:"status"`
	// InEffect marks the contract that prices usage now: the last one activated.
	InEffect    bool       `json:"in_effect"`
	PurchasedAt time.Time  `json:"purchased_at"`
	ActivatedAt *time.Time `json:"activated_at"`
	// Rates are the contract's own rates (feature or feature:tier -> price per unit); usage of
	// a feature without one is priced from the rate card (docs/PAYG.md).
	Rates map[string]decimal.Decimal `json:"rates"`
}

// Contracts is one account's PAYG contracts, in purchase order.
type Contracts struct {
	OK        bool           `json:"ok"`
	AccountID string         `json:"account_id"`
	Position  uint64         `json:"position"`
	Contracts []ContractView `json:"contracts"`
}

// AccountContracts is one account's row of the fleet contract list.
type AccountContracts struct {
	AccountID string         `json:"account_id"`
	Contracts []ContractView `json:"contracts"`
}

// PaygContracts is a page of accounts that hold PAYG contracts, with the contracts and rates.
type PaygContracts struct {
	OK         bool               `json:"ok"`
	Position   uint64             `json:"position"`
	Accounts   []AccountContracts `json:"accounts"`
	NextCursor string             `json:"next_cursor,omitempty"`
	*Past
}

// Past says which point in time a read model reflects.
type Past struct {
	AsOf time.Time `json:"as_of"`
	// UnrecordedEvents counts the renewals and expiries that were due at as_of and are applied
	// although the stream records them later (or not yet).
	UnrecordedEvents int `json:"unrecorded_events"`
	// BrokenAccounts (fleet as_of answers only) lists, in account id order and at most
	// MaxBrokenAccounts of them, the accounts left out of the answer because their stored history
	// breaks before their first event past as_of: a message that cannot be decoded, or an event
	// that does not follow the account's last version. The rows, counts and totals cover the
	// other accounts only. Absent when none is broken.
	BrokenAccounts []BrokenAccount `json:"broken_accounts,omitempty"`
	// BrokenCount is how many accounts were left out (BrokenAccounts may list fewer).
	BrokenCount int `json:"broken_count,omitempty"`
}

// MaxBrokenAccounts bounds the broken accounts one fleet as_of answer lists.
const MaxBrokenAccounts = 100

// BrokenAccount is an account whose stored history cannot be folded: the position where it
// breaks and why (as the writer's history_broken reports it for the account's commands).
type BrokenAccount struct {
	AccountID string `json:"account_id"`
	Position  uint64 `json:"position"`
	Reason    string `json:"reason"`
}

// FleetQuery is the body of a fleet query (ledger.query.accounts, totals, payg_charges,
// payg_contracts); every field is optional, and a filter the query does not have is refused.
type FleetQuery struct {
	MinPosition uint64 `json:"min_position,omitempty"`
	// AsOf (RFC 3339) answers as of that moment.
	AsOf string `json:"as_of,omitempty"`
	// Cursor is a NextCursor of the same query; Limit is 1-1000 (default 100).
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// Prefix keeps accounts whose id starts with it (every list).
	Prefix string `json:"prefix,omitempty"`
	// Status, BillingPath, Source, Shortfall and ExpiringBefore (RFC 3339) filter accounts.
	Status         string `json:"status,omitempty"`
	BillingPath    string `json:"billing_path,omitempty"`
	Source         string `json:"source,omitempty"`
	Shortfall      *bool  `json:"shortfall,omitempty"`
	ExpiringBefore string `json:"expiring_before,omitempty"`
	// Active filters payg_contracts; Month (YYYY-MM) is payg_charges' month.
	Active *bool  `json:"active,omitempty"`
	Month  string `json:"month,omitempty"`
}
