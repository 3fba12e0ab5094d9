package projections

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/ledger"
)

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

// BalanceOf renders the balance read model from an account state.
func BalanceOf(a ledger.Account, position uint64) Balance {
	allocs := make(map[string]decimal.Decimal, len(a.Allocations))
	for f, c := range a.Allocations {
		allocs[f] = c
	}
	return Balance{
		OK: true, AccountID: a.ID, Position: position, TotalCredits: a.TotalCredits(),
		AllocatedCredits: a.AllocatedCredits(), AvailableCredits: a.AvailableCredits(),
		Shortfall: a.Shortfall(), Allocations: allocs,
	}
}

// LicensesOf renders the license list from an account state.
func LicensesOf(a ledger.Account, position uint64) Licenses {
	out := Licenses{OK: true, AccountID: a.ID, Position: position, Licenses: make([]LicenseItem, 0, len(a.LicenseOrder))}
	for _, id := range a.LicenseOrder {
		l := a.Licenses[id]
		item := LicenseItem{
			LicenseID: l.ID, Source: l.Source, Status: l.Status, Credits: l.Credits, AutoRenew: l.AutoRenew,
			PurchasedAt: l.PurchasedAt.UTC(), ExpiresAt: l.ExpiresAt.UTC(),
		}
		if l.ParentID != "" {
			parent := l.ParentID
			item.ParentLicenseID = &parent
		}
		if !l.ActivatedAt.IsZero() {
			t := l.ActivatedAt.UTC()
			item.ActivatedAt = &t
		}
		out.Licenses = append(out.Licenses, item)
	}
	return out
}

// SwitchesOf renders the billing-switch history from an account state.
func SwitchesOf(a ledger.Account, position uint64, cat ledger.Catalogue) Switches {
	out := Switches{OK: true, AccountID: a.ID, Position: position, Features: map[string]FeatureSwitches{}}
	for _, f := range cat.Features() {
		if f.PaygEligible {
			out.Features[f.ID] = FeatureSwitches{BillingModel: ledger.ModelCredits, History: []SwitchEntry{}}
		}
	}
	for id, fb := range a.Features {
		fs := FeatureSwitches{BillingModel: a.BillingModel(id), History: make([]SwitchEntry, 0, len(fb.History))}
		if !fb.NextSwitchAllowedAt.IsZero() {
			t := fb.NextSwitchAllowedAt.UTC()
			fs.NextSwitchAllowedAt = &t
		}
		for _, s := range fb.History {
			fs.History = append(fs.History, SwitchEntry{From: s.From, To: s.To, At: s.At.UTC()})
		}
		out.Features[id] = fs
	}
	return out
}
