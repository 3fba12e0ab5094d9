package commands

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/ledger"
)

// Meta is carried by every command request.
type Meta struct {
	// CommandID is the idempotency key: 1-128 characters, not starting with '$'.
	CommandID string `json:"command_id"`
	// AccountID is 1-64 characters of A-Za-z0-9_-; it becomes part of a NATS subject.
	AccountID string `json:"account_id"`
	// ExpectedVersion, when set, makes the command fail with version_conflict unless the
	// account is still at that version.
	ExpectedVersion *uint64 `json:"expected_version,omitempty"`
	// CorrelationID is copied into every event the command appends.
	CorrelationID string `json:"correlation_id,omitempty"`
}

func (m *Meta) meta() *Meta { return m }

// RequestMeta returns the fields every request carries, so that a client can fill them in on any
// request type (the Go client generates an empty command_id).
func (m *Meta) RequestMeta() *Meta { return m }

// Request is implemented by a pointer to every command request type.
type Request interface {
	RequestMeta() *Meta
}

// MaxCommandIDLen bounds command_id.
const MaxCommandIDLen = 128

func (m *Meta) check() error {
	if n := len(m.CommandID); n == 0 || n > MaxCommandIDLen {
		return fmt.Errorf("command_id must be 1-%d characters", MaxCommandIDLen)
	}
	if m.CommandID[0] == '$' {
		return fmt.Errorf("command_id must not start with '$' (reserved for the ledger's own commands)")
	}
	for _, r := range m.CommandID {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("command_id must not contain control characters")
		}
	}
	if !ledger.ValidID(m.AccountID) {
		return fmt.Errorf("account_id must be 1-64 characters of A-Za-z0-9_-")
	}
	if len(m.CorrelationID) > MaxCommandIDLen {
		return fmt.Errorf("correlation_id must be at most %d characters", MaxCommandIDLen)
	}
	return nil
}

func checkID(field, v string) error {
	if !ledger.ValidID(v) {
		return fmt.Errorf("%s must be 1-64 characters of A-Za-z0-9_-", field)
	}
	return nil
}

// PurchaseLicense is the purchase_license request.
type PurchaseLicense struct {
	Meta
	LicenseID     string  `json:"license_id"`
	Source        string  `json:"source"`
	Credits       Amount  `json:"credits"`
	TermMonths    *int    `json:"term_months,omitempty"`
	AutoRenew     *bool   `json:"auto_renew,omitempty"`
	ContractStart *string `json:"contract_start,omitempty"`
}

// ActivateLicense is the activate_license request.
type ActivateLicense struct {
	Meta
	LicenseID string `json:"license_id"`
}

// UpgradeContract is the upgrade_contract request.
type UpgradeContract struct {
	Meta
	LicenseID         string `json:"license_id"`
	AdditionalCredits Amount `json:"additional_credits"`
	ItemID            string `json:"item_id,omitempty"`
}

// AllocateCredits is the allocate_credits request.
type AllocateCredits struct {
	Meta
	Feature string `json:"feature"`
	Credits Amount `json:"credits"`
}

// ReleaseCredits is the release_credits request.
type ReleaseCredits struct {
	Meta
	Feature string `json:"feature"`
	Credits Amount `json:"credits"`
}

// SetAutoRenew is the set_auto_renew request.
type SetAutoRenew struct {
	Meta
	LicenseID string `json:"license_id"`
	Enabled   *bool  `json:"enabled"`
}

// PurchasePaygContract is the purchase_payg_contract request.
type PurchasePaygContract struct {
	Meta
	ContractID string            `json:"contract_id"`
	Rates      map[string]Amount `json:"rates,omitempty"`
}

// ActivatePaygContract is the activate_payg_contract request.
type ActivatePaygContract struct {
	Meta
	ContractID string `json:"contract_id"`
}

// SwitchBillingModel is the switch_billing_model request.
type SwitchBillingModel struct {
	Meta
	Feature string `json:"feature"`
	To      string `json:"to"`
}

func (c *PurchaseLicense) domain() (ledger.Command, error) {
	if err := checkID("license_id", c.LicenseID); err != nil {
		return nil, err
	}
	switch c.Source {
	case ledger.SourceSales, ledger.SourceAWS, ledger.SourceAzure:
	default:
		return nil, fmt.Errorf("source must be sales, aws_marketplace or azure_marketplace")
	}
	if err := c.Credits.check("credits"); err != nil {
		return nil, err
	}
	cmd := ledger.PurchaseLicense{LicenseID: c.LicenseID, Source: c.Source, Credits: c.Credits.Decimal,
		TermMonths: ledger.DefaultTermMonths, AutoRenew: true}
	if c.TermMonths != nil {
		if *c.TermMonths < 1 || *c.TermMonths > ledger.MaxTermMonths {
			return nil, fmt.Errorf("term_months must be from 1 to %d", ledger.MaxTermMonths)
		}
		cmd.TermMonths = *c.TermMonths
	}
	if c.AutoRenew != nil {
		cmd.AutoRenew = *c.AutoRenew
	}
	// Fill the defaults into the request too, so the idempotency hash treats an omitted
	// default and the same value sent explicitly as one body.
	c.TermMonths, c.AutoRenew = &cmd.TermMonths, &cmd.AutoRenew
	if c.ContractStart != nil {
		t, err := time.Parse(time.RFC3339Nano, *c.ContractStart)
		if err != nil {
			return nil, fmt.Errorf("contract_start must be an RFC 3339 time")
		}
		if t.Before(ledger.MinContractStart) || !t.Before(ledger.MaxContractStart) {
			return nil, fmt.Errorf("contract_start must be in the years 2000 to 2099")
		}
		cmd.ContractStart = t.UTC()
	}
	return cmd, nil
}

func (c *ActivateLicense) domain() (ledger.Command, error) {
	if err := checkID("license_id", c.LicenseID); err != nil {
		return nil, err
	}
	return ledger.ActivateLicense{LicenseID: c.LicenseID}, nil
}

func (c *UpgradeContract) domain() (ledger.Command, error) {
	if err := checkID("license_id", c.LicenseID); err != nil {
		return nil, err
	}
	if err := c.AdditionalCredits.check("additional_credits"); err != nil {
		return nil, err
	}
	if c.ItemID != "" {
		if err := checkID("item_id", c.ItemID); err != nil {
			return nil, err
		}
	}
	return ledger.UpgradeContract{LicenseID: c.LicenseID, AdditionalCredits: c.AdditionalCredits.Decimal, ItemID: c.ItemID}, nil
}

func (c *AllocateCredits) domain() (ledger.Command, error) {
	if err := checkID("feature", c.Feature); err != nil {
		return nil, err
	}
	if err := c.Credits.check("credits"); err != nil {
		return nil, err
	}
	return ledger.AllocateCredits{Feature: c.Feature, Credits: c.Credits.Decimal}, nil
}

func (c *ReleaseCredits) domain() (ledger.Command, error) {
	if err := checkID("feature", c.Feature); err != nil {
		return nil, err
	}
	if err := c.Credits.check("credits"); err != nil {
		return nil, err
	}
	return ledger.ReleaseCredits{Feature: c.Feature, Credits: c.Credits.Decimal}, nil
}

func (c *SetAutoRenew) domain() (ledger.Command, error) {
	if err := checkID("license_id", c.LicenseID); err != nil {
		return nil, err
	}
	if c.Enabled == nil {
		return nil, fmt.Errorf("enabled is required (true or false)")
	}
	return ledger.SetAutoRenew{LicenseID: c.LicenseID, Enabled: *c.Enabled}, nil
}

func (c *PurchasePaygContract) domain() (ledger.Command, error) {
	if err := checkID("contract_id", c.ContractID); err != nil {
		return nil, err
	}
	cmd := ledger.PurchasePaygContract{ContractID: c.ContractID}
	if len(c.Rates) > 0 {
		cmd.Rates = make(map[string]decimal.Decimal, len(c.Rates))
	}
	for f, r := range c.Rates {
		if err := checkRateKey(f); err != nil {
			return nil, err
		}
		if err := r.check("rates." + f); err != nil {
			return nil, err
		}
		cmd.Rates[f] = r.Decimal
	}
	return cmd, nil
}

func (c *ActivatePaygContract) domain() (ledger.Command, error) {
	if err := checkID("contract_id", c.ContractID); err != nil {
		return nil, err
	}
	return ledger.ActivatePaygContract{ContractID: c.ContractID}, nil
}

func (c *SwitchBillingModel) domain() (ledger.Command, error) {
	if err := checkID("feature", c.Feature); err != nil {
		return nil, err
	}
	if c.To != ledger.ModelPayg && c.To != ledger.ModelCredits {
		return nil, fmt.Errorf("to must be payg or credits")
	}
	return ledger.SwitchBillingModel{Feature: c.Feature, To: c.To}, nil
}
