package projections

import (
	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// The read models' answer types live in api, shared with the Go client (ledgerclient).
type (
	Balance         = api.Balance
	LicenseItem     = api.LicenseItem
	Licenses        = api.Licenses
	SwitchEntry     = api.SwitchEntry
	FeatureSwitches = api.FeatureSwitches
	Switches        = api.Switches
)

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
