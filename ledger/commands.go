package ledger

import (
	"time"

	"github.com/shopspring/decimal"
)

// Command is a request to change one account; Decide turns it into events or a rejection.
type Command interface {
	// Name is the command's wire name (the last token of its NATS subject).
	Name() string
}

// License sources.
const (
	SourceSales = "sales"
	SourceAWS   = "aws_marketplace"
	SourceAzure = "azure_marketplace"
)

// Billing models a feature can be on.
const (
	ModelCredits = "credits"
	ModelPayg    = "payg"
)

// PurchaseLicense buys a credits license; it stays pending until activated.
type PurchaseLicense struct {
	LicenseID  string
	Source     string
	Credits    decimal.Decimal
	TermMonths int
	AutoRenew  bool
	// ContractStart defaults to the decision time when zero.
	ContractStart time.Time
}

// ActivateLicense puts a purchased license's credits into the pool.
type ActivateLicense struct{ LicenseID string }

// UpgradeContract adds credits to an active license: an extra item of the license list on AWS
// and Azure Marketplace, more credits on the license itself for a sales license.
type UpgradeContract struct {
	LicenseID         string
	AdditionalCredits decimal.Decimal
	// ItemID names the new item (marketplace licenses only); empty derives "<license>-u<n>".
	ItemID string
}

// AllocateCredits reserves credits of the pool for a feature.
type AllocateCredits struct {
	Feature string
	Credits decimal.Decimal
}

// ReleaseCredits gives a feature's reserved credits back to the pool.
type ReleaseCredits struct {
	Feature string
	Credits decimal.Decimal
}

// SetAutoRenew turns a license's auto-renew on or off.
type SetAutoRenew struct {
	LicenseID string
	Enabled   bool
}

// PurchasePaygContract buys a pay-as-you-go contract, with optional per-feature rates.
type PurchasePaygContract struct {
	ContractID string
	Rates      map[string]decimal.Decimal
}

// ActivatePaygContract makes a PAYG contract usable for switching features.
type ActivatePaygContract struct{ ContractID string }

// SwitchBillingModel moves a feature between credits and PAYG billing.
type SwitchBillingModel struct {
	Feature string
	To      string
}

// AdvanceTime brings an account's licenses up to date with the clock (renewals, expiries); the
// expiry processor sends it.
type AdvanceTime struct{}

func (PurchaseLicense) Name() string      { return "purchase_license" }
func (ActivateLicense) Name() string      { return "activate_license" }
func (UpgradeContract) Name() string      { return "upgrade_contract" }
func (AllocateCredits) Name() string      { return "allocate_credits" }
func (ReleaseCredits) Name() string       { return "release_credits" }
func (SetAutoRenew) Name() string         { return "set_auto_renew" }
func (PurchasePaygContract) Name() string { return "purchase_payg_contract" }
func (ActivatePaygContract) Name() string { return "activate_payg_contract" }
func (SwitchBillingModel) Name() string   { return "switch_billing_model" }
func (AdvanceTime) Name() string          { return "advance_time" }
