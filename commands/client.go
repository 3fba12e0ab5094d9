package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/ledger"
)

// Client sends commands and queries to a ledger over NATS. A rejection comes back as a
// *ledger.Error, so callers can use errors.Is(err, ledger.ErrInsufficientCredits).
//
// Deprecated: use ledgerclient.Client, which generates empty command ids, returns typed query
// answers and Replayed, and retries unavailable answers with the same command_id. Client keeps
// working for existing callers.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
}

// NewClient wraps a connection; timeout bounds each request when ctx has no deadline.
//
// Deprecated: use ledgerclient.New.
func NewClient(nc *nats.Conn, timeout time.Duration) (*Client, error) {
	if nc == nil {
		return nil, errors.New("commands: nil connection")
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Client{nc: nc, timeout: timeout}, nil
}

// Send sends any command request by name and returns the accepted reply or the rejection.
func (c *Client) Send(ctx context.Context, name string, body any) (Accepted, error) {
	msg, err := c.request(ctx, Subject(name), body)
	if err != nil {
		return Accepted{}, err
	}
	var a Accepted
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		return Accepted{}, fmt.Errorf("decode reply of %s: %w", name, err)
	}
	a.Replayed = msg.Header.Get(ReplayedHeader) == "true"
	return a, nil
}

// Query sends a query (balance, licenses, switches, ...) and returns the raw JSON answer.
func (c *Client) Query(ctx context.Context, name string, body any) (json.RawMessage, error) {
	msg, err := c.request(ctx, "ledger.query."+name, body)
	if err != nil {
		return nil, err
	}
	return msg.Data, nil
}

func (c *Client) request(ctx context.Context, subject string, body any) (*nats.Msg, error) {
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	case json.RawMessage:
		data = b
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", subject, err)
	}
	var r Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	if r.Error != nil || !r.OK {
		if r.Error == nil {
			return nil, fmt.Errorf("reply of %s: not ok and no error", subject)
		}
		return nil, &ledger.Error{Code: r.Error.Code, Message: r.Error.Message, Data: r.Error.Data}
	}
	return msg, nil
}

// PurchaseLicense sends purchase_license.
func (c *Client) PurchaseLicense(ctx context.Context, r PurchaseLicense) (Accepted, error) {
	return c.Send(ctx, "purchase_license", r)
}

// ActivateLicense sends activate_license.
func (c *Client) ActivateLicense(ctx context.Context, r ActivateLicense) (Accepted, error) {
	return c.Send(ctx, "activate_license", r)
}

// UpgradeContract sends upgrade_contract.
func (c *Client) UpgradeContract(ctx context.Context, r UpgradeContract) (Accepted, error) {
	return c.Send(ctx, "upgrade_contract", r)
}

// AllocateCredits sends allocate_credits.
func (c *Client) AllocateCredits(ctx context.Context, r AllocateCredits) (Accepted, error) {
	return c.Send(ctx, "allocate_credits", r)
}

// ReleaseCredits sends release_credits.
func (c *Client) ReleaseCredits(ctx context.Context, r ReleaseCredits) (Accepted, error) {
	return c.Send(ctx, "release_credits", r)
}

// SetAutoRenew sends set_auto_renew.
func (c *Client) SetAutoRenew(ctx context.Context, r SetAutoRenew) (Accepted, error) {
	return c.Send(ctx, "set_auto_renew", r)
}

// PurchasePaygContract sends purchase_payg_contract.
func (c *Client) PurchasePaygContract(ctx context.Context, r PurchasePaygContract) (Accepted, error) {
	return c.Send(ctx, "purchase_payg_contract", r)
}

// ActivatePaygContract sends activate_payg_contract.
func (c *Client) ActivatePaygContract(ctx context.Context, r ActivatePaygContract) (Accepted, error) {
	return c.Send(ctx, "activate_payg_contract", r)
}

// SwitchBillingModel sends switch_billing_model.
func (c *Client) SwitchBillingModel(ctx context.Context, r SwitchBillingModel) (Accepted, error) {
	return c.Send(ctx, "switch_billing_model", r)
}

// RecordUsage sends record_usage.
func (c *Client) RecordUsage(ctx context.Context, r RecordUsage) (Accepted, error) {
	return c.Send(ctx, "record_usage", r)
}

// LinkSubscription sends link_subscription.
func (c *Client) LinkSubscription(ctx context.Context, r LinkSubscription) (Accepted, error) {
	return c.Send(ctx, "link_subscription", r)
}

// UnlinkSubscription sends unlink_subscription.
func (c *Client) UnlinkSubscription(ctx context.Context, r UnlinkSubscription) (Accepted, error) {
	return c.Send(ctx, "unlink_subscription", r)
}
