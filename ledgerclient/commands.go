package ledgerclient

import (
	"context"

	"github.com/creditledger/creditledger/commands"
)

// PurchaseLicense sends purchase_license.
func (c *Client) PurchaseLicense(ctx context.Context, r commands.PurchaseLicense) (Result, error) {
	return c.Send(ctx, "purchase_license", &r)
}

// ActivateLicense sends activate_license.
func (c *Client) ActivateLicense(ctx context.Context, r commands.ActivateLicense) (Result, error) {
	return c.Send(ctx, "activate_license", &r)
}

// UpgradeContract sends upgrade_contract.
func (c *Client) UpgradeContract(ctx context.Context, r commands.UpgradeContract) (Result, error) {
	return c.Send(ctx, "upgrade_contract", &r)
}

// AllocateCredits sends allocate_credits.
func (c *Client) AllocateCredits(ctx context.Context, r commands.AllocateCredits) (Result, error) {
	return c.Send(ctx, "allocate_credits", &r)
}

// ReleaseCredits sends release_credits.
func (c *Client) ReleaseCredits(ctx context.Context, r commands.ReleaseCredits) (Result, error) {
	return c.Send(ctx, "release_credits", &r)
}

// SetAutoRenew sends set_auto_renew.
func (c *Client) SetAutoRenew(ctx context.Context, r commands.SetAutoRenew) (Result, error) {
	return c.Send(ctx, "set_auto_renew", &r)
}

// PurchasePaygContract sends purchase_payg_contract.
func (c *Client) PurchasePaygContract(ctx context.Context, r commands.PurchasePaygContract) (Result, error) {
	return c.Send(ctx, "purchase_payg_contract", &r)
}

// ActivatePaygContract sends activate_payg_contract.
func (c *Client) ActivatePaygContract(ctx context.Context, r commands.ActivatePaygContract) (Result, error) {
	return c.Send(ctx, "activate_payg_contract", &r)
}

// SwitchBillingModel sends switch_billing_model.
func (c *Client) SwitchBillingModel(ctx context.Context, r commands.SwitchBillingModel) (Result, error) {
	return c.Send(ctx, "switch_billing_model", &r)
}

// RecordUsage sends record_usage.
func (c *Client) RecordUsage(ctx context.Context, r commands.RecordUsage) (Result, error) {
	return c.Send(ctx, "record_usage", &r)
}

// LinkSubscription sends link_subscription.
func (c *Client) LinkSubscription(ctx context.Context, r commands.LinkSubscription) (Result, error) {
	return c.Send(ctx, "link_subscription", &r)
}

// UnlinkSubscription sends unlink_subscription.
func (c *Client) UnlinkSubscription(ctx context.Context, r commands.UnlinkSubscription) (Result, error) {
	return c.Send(ctx, "unlink_subscription", &r)
}
