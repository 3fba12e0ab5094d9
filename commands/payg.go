package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// RecordUsage is the record_usage request: metered pay-as-you-go usage of a feature.
type RecordUsage struct {
	Meta
	// UsageID is unique per account: a repeat with the same content returns the first reply.
	UsageID  string `json:"usage_id"`
	Feature  string `json:"feature"`
	Quantity Amount `json:"quantity"`
	// Unit must be the feature's unit in the catalogue (hours, gb, accounts, ...).
	Unit string `json:"unit"`
	// OccurredAt is when the usage happened (RFC 3339).
	OccurredAt string `json:"occurred_at"`
	// InstanceSize (medium, large, xlarge) and CloudConnector (aws, azure, gcp, none) describe the
	// computer for workload protection; other features must leave them out.
	InstanceSize   string `json:"instance_size,omitempty"`
	CloudConnector string `json:"cloud_connector,omitempty"`
	// VCenter (true or false, default false) says the computer is part of a vCenter account: it
	// is billed at the data-center rate whatever its size and connector. Workload protection only.
	VCenter bool `json:"vcenter,omitempty"`
}

// LinkSubscription is the link_subscription request.
type LinkSubscription struct {
	Meta
	SubscriptionID string `json:"subscription_id"`
	// Marketplace is aws or azure.
	Marketplace string `json:"marketplace"`
}

// UnlinkSubscription is the unlink_subscription request.
type UnlinkSubscription struct {
	Meta
	SubscriptionID string `json:"subscription_id"`
}

func (c *RecordUsage) domain() (ledger.Command, error) {
	if err := checkID("usage_id", c.UsageID); err != nil {
		return nil, err
	}
	if err := checkID("feature", c.Feature); err != nil {
		return nil, err
	}
	if err := c.Quantity.check("quantity"); err != nil {
		return nil, err
	}
	if c.Unit == "" {
		return nil, fmt.Errorf("unit is required")
	}
	t, err := time.Parse(time.RFC3339Nano, c.OccurredAt)
	if err != nil {
		return nil, fmt.Errorf("occurred_at must be an RFC 3339 time")
	}
	return ledger.RecordUsage{
		UsageID: c.UsageID, Feature: c.Feature, Quantity: c.Quantity.Decimal, Unit: c.Unit, OccurredAt: t.UTC(),
		InstanceSize: c.InstanceSize, CloudConnector: c.CloudConnector, VCenter: c.VCenter,
	}, nil
}

func (c *LinkSubscription) domain() (ledger.Command, error) {
	if err := checkID("subscription_id", c.SubscriptionID); err != nil {
		return nil, err
	}
	if c.Marketplace != ledger.MarketplaceAWS && c.Marketplace != ledger.MarketplaceAzure {
		return nil, fmt.Errorf("marketplace must be aws or azure")
	}
	return ledger.LinkSubscription{SubscriptionID: c.SubscriptionID, Marketplace: c.Marketplace}, nil
}

func (c *UnlinkSubscription) domain() (ledger.Command, error) {
	if err := checkID("subscription_id", c.SubscriptionID); err != nil {
		return nil, err
	}
	return ledger.UnlinkSubscription{SubscriptionID: c.SubscriptionID}, nil
}

// checkRateKey accepts a contract rate key: a feature id, or "feature:tier" for a tier of an
// instance-sized feature (for example "advanced_server_workload_protection:large").
func checkRateKey(key string) error {
	feature, tier := ledger.SplitRateKey(key)
	if !ledger.ValidID(feature) || (tier != "" || strings.HasSuffix(key, ledger.RateKeySeparator)) && !ledger.ValidID(tier) {
		return fmt.Errorf("rates keys must be a feature id or feature%stier (ids of 1-64 characters of A-Za-z0-9_-)", ledger.RateKeySeparator)
	}
	return nil
}
