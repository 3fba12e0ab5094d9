package ledger

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
)

// License statuses.
const (
	StatusPending = "pending"
	StatusActive  = "active"
	StatusExpired = "expired"
)

// License is one item of the license list: a purchased license or, on AWS and Azure Marketplace,
// an upgrade item (ParentID set) that shares its parent's term.
type License struct {
	ID          string
	ParentID    string
	Source      string
	Credits     decimal.Decimal
	TermMonths  int
	AutoRenew   bool
	Status      string
	PurchasedAt time.Time
	ActivatedAt time.Time
	ExpiresAt   time.Time
}

// Switch is one billing-model change of a feature.
type Switch struct {
	From, To string
	At       time.Time
}

// FeatureBilling is a feature's billing model and its switch history.
type FeatureBilling struct {
	Model               string
	NextSwitchAllowedAt time.Time
	History             []Switch
}

// PaygContract is a pay-as-you-go contract held by the account.
type PaygContract struct {
	ID          string
	Rates       map[string]decimal.Decimal
	Active      bool
	PurchasedAt time.Time
	ActivatedAt time.Time
}

// Account is the state of one account folded from its events. Evolve takes ownership of the
// value it is given (maps are updated in place); call Clone to keep an earlier state.
type Account struct {
	ID            string
	Version       uint64
	Licenses      map[string]License
	LicenseOrder  []string
	Allocations   map[string]decimal.Decimal
	Features      map[string]FeatureBilling
	Contracts     map[string]PaygContract
	ContractOrder []string
	// Usage indexes the account's recorded PAYG usage by usage_id (unique per account).
	Usage map[string]UsageRecord
	// Subscription is the linked marketplace subscription (zero ID when none).
	Subscription Subscription
	// LapsedSubscription is the subscription the account lost most recently.
	LapsedSubscription Subscription
	// GraceUntil is the end of the grace period that began when the account lost its
	// subscription (zero if it never lost one, cleared by a new link).
	GraceUntil time.Time
	// ExpiredAt is when the grace period ended without a new subscription (zero unless expired).
	ExpiredAt time.Time
}

// NewAccount is the state of an account with no events.
func NewAccount(id string) Account {
	return Account{
		ID:          id,
		Licenses:    map[string]License{},
		Allocations: map[string]decimal.Decimal{},
		Features:    map[string]FeatureBilling{},
		Contracts:   map[string]PaygContract{},
		Usage:       map[string]UsageRecord{},
	}
}

// WithMaps fills in any nil map, keeping everything else: a decoded snapshot (gob leaves empty
// maps nil) or a zero Account becomes safe to Evolve without losing what it holds.
func (a Account) WithMaps() Account {
	if a.Licenses == nil {
		a.Licenses = map[string]License{}
	}
	if a.Allocations == nil {
		a.Allocations = map[string]decimal.Decimal{}
	}
	if a.Features == nil {
		a.Features = map[string]FeatureBilling{}
	}
	if a.Contracts == nil {
		a.Contracts = map[string]PaygContract{}
	}
	if a.Usage == nil {
		a.Usage = map[string]UsageRecord{}
	}
	return a
}

// Clone returns a deep copy that shares nothing mutable with a.
func (a Account) Clone() Account {
	c := a
	c.Licenses = make(map[string]License, len(a.Licenses))
	for k, v := range a.Licenses {
		c.Licenses[k] = v
	}
	c.LicenseOrder = append([]string(nil), a.LicenseOrder...)
	c.Allocations = make(map[string]decimal.Decimal, len(a.Allocations))
	for k, v := range a.Allocations {
		c.Allocations[k] = v
	}
	c.Features = make(map[string]FeatureBilling, len(a.Features))
	for k, v := range a.Features {
		v.History = append([]Switch(nil), v.History...)
		c.Features[k] = v
	}
	c.Contracts = make(map[string]PaygContract, len(a.Contracts))
	for k, v := range a.Contracts {
		v.Rates = copyRates(v.Rates)
		c.Contracts[k] = v
	}
	c.ContractOrder = append([]string(nil), a.ContractOrder...)
	c.Usage = make(map[string]UsageRecord, len(a.Usage))
	for k, v := range a.Usage {
		c.Usage[k] = v
	}
	return c
}

// TotalCredits is the pool: the credits of every active license and item.
func (a Account) TotalCredits() decimal.Decimal {
	total := decimal.Zero
	for _, l := range a.Licenses {
		if l.Status == StatusActive {
			total = total.Add(l.Credits)
		}
	}
	return total
}

// AllocatedCredits is the sum of credits reserved by features.
func (a Account) AllocatedCredits() decimal.Decimal {
	sum := decimal.Zero
	for _, c := range a.Allocations {
		sum = sum.Add(c)
	}
	return sum
}

// AvailableCredits is the pool minus allocations, never below zero.
func (a Account) AvailableCredits() decimal.Decimal {
	d := a.TotalCredits().Sub(a.AllocatedCredits())
	if d.IsNegative() {
		return decimal.Zero
	}
	return d
}

// Shortfall is what features hold beyond the pool, which happens when a license expires under
// existing allocations; the ledger reports it rather than silently releasing anyone's credits.
func (a Account) Shortfall() decimal.Decimal {
	d := a.AllocatedCredits().Sub(a.TotalCredits())
	if d.IsNegative() {
		return decimal.Zero
	}
	return d
}

// BillingModel is the feature's current model; every feature starts on credits.
func (a Account) BillingModel(feature string) string {
	if fb, ok := a.Features[feature]; ok && fb.Model != "" {
		return fb.Model
	}
	return ModelCredits
}

// HasActivePayg reports whether any PAYG contract of the account is active.
func (a Account) HasActivePayg() bool {
	for _, c := range a.Contracts {
		if c.Active {
			return true
		}
	}
	return false
}

// Evolve applies one event to the state. It is total: every registered event type has a case,
// and the version advances for every event.
func Evolve(a Account, e events.Event) Account {
	a = a.WithMaps()
	if a.ID == "" {
		a.ID = e.AccountID
	}
	a.Version = e.Version
	switch p := e.Data.(type) {
	case events.LicensePurchased:
		a.Licenses[p.LicenseID] = License{
			ID: p.LicenseID, Source: p.Source, Credits: p.Credits, TermMonths: p.TermMonths,
			AutoRenew: p.AutoRenew, Status: StatusPending, PurchasedAt: p.PurchasedAt, ExpiresAt: p.ExpiresAt,
		}
		a.LicenseOrder = append(a.LicenseOrder, p.LicenseID)
	case events.LicenseActivated:
		l := a.Licenses[p.LicenseID]
		l.Status, l.ActivatedAt = StatusActive, p.ActivatedAt
		a.Licenses[p.LicenseID] = l
	case events.ContractUpgraded:
		parent := a.Licenses[p.LicenseID]
		// No item id: a sales upgrade, or an AWS upgrade stored before AWS upgrades became items
		// (issue 16). Both raise the license's own credits, so stored events keep folding to the
		// balances they always gave; only new events carry an item id.
		if p.ItemID == "" {
			parent.Credits = parent.Credits.Add(p.AdditionalCredits)
			a.Licenses[p.LicenseID] = parent
			break
		}
		a.Licenses[p.ItemID] = License{
			ID: p.ItemID, ParentID: p.LicenseID, Source: parent.Source, Credits: p.AdditionalCredits,
			TermMonths: parent.TermMonths, AutoRenew: parent.AutoRenew, Status: parent.Status,
			PurchasedAt: p.UpgradedAt, ActivatedAt: p.UpgradedAt, ExpiresAt: p.ExpiresAt,
		}
		a.LicenseOrder = append(a.LicenseOrder, p.ItemID)
	case events.CreditsAllocated:
		a.Allocations[p.Feature] = a.Allocations[p.Feature].Add(p.Credits)
	case events.CreditsReleased:
		left := a.Allocations[p.Feature].Sub(p.Credits)
		if left.IsZero() {
			delete(a.Allocations, p.Feature)
		} else {
			a.Allocations[p.Feature] = left
		}
	case events.AutoRenewSet:
		a.updateFamily(p.LicenseID, func(l *License) { l.AutoRenew = p.Enabled })
	case events.PaygContractPurchased:
		a.Contracts[p.ContractID] = PaygContract{ID: p.ContractID, Rates: copyRates(p.Rates), PurchasedAt: p.PurchasedAt}
		a.ContractOrder = append(a.ContractOrder, p.ContractID)
	case events.PaygContractActivated:
		c := a.Contracts[p.ContractID]
		c.Active, c.ActivatedAt = true, p.ActivatedAt
		a.Contracts[p.ContractID] = c
	case events.BillingModelSwitched:
		fb := a.Features[p.Feature]
		fb.Model = p.To
		fb.NextSwitchAllowedAt = p.NextSwitchAllowedAt
		fb.History = append(fb.History, Switch{From: p.From, To: p.To, At: p.At})
		a.Features[p.Feature] = fb
	case events.LicenseRenewed:
		a.updateFamily(p.LicenseID, func(l *License) { l.ExpiresAt = p.ExpiresAt })
	case events.LicenseExpired:
		a.updateFamily(p.LicenseID, func(l *License) { l.Status = StatusExpired })
	case events.UsageRecorded:
		a = a.evolveUsage(e, p)
	case events.SubscriptionLinked, events.SubscriptionUnlinked, events.AccountExpired:
		a = a.evolveSubscription(p)
	}
	return a
}

// updateFamily applies f to a license and to every item that extends it.
func (a Account) updateFamily(licenseID string, f func(*License)) {
	for _, id := range a.LicenseOrder {
		l := a.Licenses[id]
		if l.ID == licenseID || l.ParentID == licenseID {
			f(&l)
			a.Licenses[id] = l
		}
	}
}

func copyRates(m map[string]decimal.Decimal) map[string]decimal.Decimal {
	if m == nil {
		return nil
	}
	out := make(map[string]decimal.Decimal, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
