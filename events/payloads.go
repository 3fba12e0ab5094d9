package events

import (
	"time"

	"github.com/shopspring/decimal"
)

// Event type names as stored in the envelope's "type" field. They are part of the wire format
// and never change.
const (
	TypeLicensePurchased      = "LicensePurchased"
	TypeLicenseActivated      = "LicenseActivated"
	TypeContractUpgraded      = "ContractUpgraded"
	TypeCreditsAllocated      = "CreditsAllocated"
	TypeCreditsReleased       = "CreditsReleased"
	TypeAutoRenewSet          = "AutoRenewSet"
	TypePaygContractPurchased = "PaygContractPurchased"
	TypePaygContractActivated = "PaygContractActivated"
	TypeBillingModelSwitched  = "BillingModelSwitched"
	TypeLicenseRenewed        = "LicenseRenewed"
	TypeLicenseExpired        = "LicenseExpired"
	// Pay-as-you-go usage and marketplace subscriptions (issue 5).
	TypeUsageRecorded        = "UsageRecorded"
	TypeSubscriptionLinked   = "SubscriptionLinked"
	TypeSubscriptionUnlinked = "SubscriptionUnlinked"
	TypeAccountExpired       = "AccountExpired"
)

// Payload is the business content of one event; its type name selects the envelope's "type".
type Payload interface {
	EventType() string
}

// LicensePurchased records a credits license bought from one source; it is pending until activated.
type LicensePurchased struct {
	LicenseID     string          `json:"license_id"`
	Source        string          `json:"source"`
	Credits       decimal.Decimal `json:"credits"`
	TermMonths    int             `json:"term_months"`
	AutoRenew     bool            `json:"auto_renew"`
	ContractStart time.Time       `json:"contract_start"`
	PurchasedAt   time.Time       `json:"purchased_at"`
	ExpiresAt     time.Time       `json:"expires_at"`
}

// LicenseActivated records that a license's credits joined the account's pool.
type LicenseActivated struct {
	LicenseID   string    `json:"license_id"`
	ActivatedAt time.Time `json:"activated_at"`
}

// ContractUpgraded records added credits. On AWS and Azure Marketplace the increase is its own
// item (ItemID); without ItemID (sales licenses, and AWS upgrades stored before issue 16) it
// raises the license's own credits.
type ContractUpgraded struct {
	LicenseID         string          `json:"license_id"`
	AdditionalCredits decimal.Decimal `json:"additional_credits"`
	ItemID            string          `json:"item_id,omitempty"`
	ExpiresAt         time.Time       `json:"expires_at"`
	UpgradedAt        time.Time       `json:"upgraded_at"`
}

// CreditsAllocated records credits reserved for a product feature.
type CreditsAllocated struct {
	Feature string          `json:"feature"`
	Credits decimal.Decimal `json:"credits"`
}

// Reasons a CreditsReleased event carries.
const (
	ReleaseRequested      = "requested"
	ReleaseSwitchedToPayg = "switched_to_payg"
)

// CreditsReleased records credits given back to the pool by a feature.
type CreditsReleased struct {
	Feature string          `json:"feature"`
	Credits decimal.Decimal `json:"credits"`
	Reason  string          `json:"reason"`
}

// AutoRenewSet records the buyer turning a license's auto-renew on or off.
type AutoRenewSet struct {
	LicenseID string `json:"license_id"`
	Enabled   bool   `json:"enabled"`
}

// PaygContractPurchased records a pay-as-you-go contract bought on AWS Marketplace.
type PaygContractPurchased struct {
	ContractID  string                     `json:"contract_id"`
	Rates       map[string]decimal.Decimal `json:"rates,omitempty"`
	PurchasedAt time.Time                  `json:"purchased_at"`
}

// PaygContractActivated records that a PAYG contract can now carry switched features.
type PaygContractActivated struct {
	ContractID  string    `json:"contract_id"`
	ActivatedAt time.Time `json:"activated_at"`
}

// BillingModelSwitched records a feature moving between credits and pay-as-you-go billing.
type BillingModelSwitched struct {
	Feature             string    `json:"feature"`
	From                string    `json:"from"`
	To                  string    `json:"to"`
	At                  time.Time `json:"at"`
	NextSwitchAllowedAt time.Time `json:"next_switch_allowed_at"`
}

// LicenseRenewed records a license (and its items) entering its next term.
type LicenseRenewed struct {
	LicenseID         string    `json:"license_id"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
	ExpiresAt         time.Time `json:"expires_at"`
}

// LicenseExpired records a license (and its items) leaving the pool at the end of its term.
type LicenseExpired struct {
	LicenseID string    `json:"license_id"`
	ExpiredAt time.Time `json:"expired_at"`
}

func (LicensePurchased) EventType() string      { return TypeLicensePurchased }
func (LicenseActivated) EventType() string      { return TypeLicenseActivated }
func (ContractUpgraded) EventType() string      { return TypeContractUpgraded }
func (CreditsAllocated) EventType() string      { return TypeCreditsAllocated }
func (CreditsReleased) EventType() string       { return TypeCreditsReleased }
func (AutoRenewSet) EventType() string          { return TypeAutoRenewSet }
func (PaygContractPurchased) EventType() string { return TypePaygContractPurchased }
func (PaygContractActivated) EventType() string { return TypePaygContractActivated }
func (BillingModelSwitched) EventType() string  { return TypeBillingModelSwitched }
func (LicenseRenewed) EventType() string        { return TypeLicenseRenewed }
func (LicenseExpired) EventType() string        { return TypeLicenseExpired }
func (UsageRecorded) EventType() string         { return TypeUsageRecorded }
func (SubscriptionLinked) EventType() string    { return TypeSubscriptionLinked }
func (SubscriptionUnlinked) EventType() string  { return TypeSubscriptionUnlinked }
func (AccountExpired) EventType() string        { return TypeAccountExpired }
