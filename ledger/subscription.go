package ledger

import (
	"time"

	"github.com/creditledger/creditledger/events"
)

// SubscriptionGracePeriod is how long an account that lost its marketplace subscription keeps
// working before it is in the "trial or subscription expired" state.
const SubscriptionGracePeriod = 48 * time.Hour

// Marketplaces a subscription comes from.
const (
	MarketplaceAWS   = "aws"
	MarketplaceAzure = "azure"
)

// Account statuses, as the account read model shows them.
const (
	AccountStatusActive  = "active"
	AccountStatusGrace   = "grace"
	AccountStatusExpired = "expired"
)

// Billing paths: how an account pays.
const (
	BillingMarketplace = "marketplace"
	BillingAnnual      = "annual"
	BillingNone        = "none"
)

// Subscription is a marketplace subscription linked to an account.
type Subscription struct {
	ID          string
	Marketplace string
	LinkedAt    time.Time
}

// LinkSubscription makes a marketplace subscription the account's way to pay. A subscription is
// linked to one account at a time: linking it to another account moves it.
type LinkSubscription struct {
	SubscriptionID string
	Marketplace    string
	// HeldBy is the account that holds the subscription now ("" if none). Clients do not set it:
	// the writer, which knows every account, fills it in before deciding.
	HeldBy string
}

// UnlinkSubscription ends the account's marketplace subscription; its grace period begins.
type UnlinkSubscription struct{ SubscriptionID string }

// TransferSubscription is the holder's side of a move: the writer decides it on the account
// that holds the subscription, in the same atomic append as the new holder's LinkSubscription.
// It never comes from the wire.
type TransferSubscription struct {
	SubscriptionID string
	Marketplace    string
	ToAccountID    string
}

func (LinkSubscription) Name() string     { return "link_subscription" }
func (UnlinkSubscription) Name() string   { return "unlink_subscription" }
func (TransferSubscription) Name() string { return "transfer_subscription" }

// Status is the account's status: active, in its grace period, or expired.
func (a Account) Status() string {
	switch {
	case a.Subscription.ID != "":
		return AccountStatusActive
	case !a.ExpiredAt.IsZero():
		return AccountStatusExpired
	case !a.GraceUntil.IsZero():
		return AccountStatusGrace
	default:
		return AccountStatusActive
	}
}

// BillingPath is how the account pays: a linked marketplace subscription, annual (credits)
// licenses, or nothing yet.
func (a Account) BillingPath() string {
	if a.Subscription.ID != "" {
		return BillingMarketplace
	}
	for _, l := range a.Licenses {
		if l.Status == StatusActive {
			return BillingAnnual
		}
	}
	return BillingNone
}

// salesLicense returns an unexpired (pending or active) sales license, which rules out a
// marketplace subscription.
func (a Account) salesLicense() (string, bool) {
	for _, id := range a.LicenseOrder {
		l := a.Licenses[id]
		if l.Source == SourceSales && l.Status != StatusExpired {
			return id, true
		}
	}
	return "", false
}

// subscriptionDue is the AccountExpired event due at now, if the account's grace period has
// ended without a new subscription.
func subscriptionDue(a Account, now time.Time) []events.Payload {
	if a.Subscription.ID != "" || a.GraceUntil.IsZero() || !a.ExpiredAt.IsZero() || now.Before(a.GraceUntil) {
		return nil
	}
	return []events.Payload{events.AccountExpired{
		Reason: events.AccountExpiredReason, SubscriptionID: a.LapsedSubscription.ID, ExpiredAt: a.GraceUntil,
	}}
}

func checkSubscriptionID(id string) error {
	if !ValidID(id) {
		return Reject(CodeInvalidArgument, "subscription_id must be 1-64 characters of A-Za-z0-9_-")
	}
	return nil
}

func decideLink(a Account, c LinkSubscription, now time.Time) ([]events.Payload, error) {
	if err := checkSubscriptionID(c.SubscriptionID); err != nil {
		return nil, err
	}
	if c.Marketplace != MarketplaceAWS && c.Marketplace != MarketplaceAzure {
		return nil, Reject(CodeInvalidArgument, "marketplace must be aws or azure")
	}
	if cur := a.Subscription; cur.ID == c.SubscriptionID {
		if cur.Marketplace != c.Marketplace {
			return nil, Reject(CodeInvalidArgument, "subscription %s is an %s subscription", cur.ID, cur.Marketplace)
		}
		return nil, nil // already linked here: nothing to do
	} else if cur.ID != "" {
		e := Reject(CodeSubscriptionConflict, "account is linked to subscription %s; unlink it first", cur.ID)
		e.Data = map[string]string{"subscription_id": cur.ID}
		return nil, e
	}
	if id, ok := a.salesLicense(); ok {
		e := Reject(CodeSubscriptionConflict, "account pays through annual sales license %s; an account pays through a marketplace subscription or annual licenses, never both", id)
		e.Data = map[string]string{"license_id": id}
		return nil, e
	}
	if c.HeldBy == a.ID {
		return nil, Reject(CodeInternal, "subscription %s is recorded as held by this account but is not linked to it", c.SubscriptionID)
	}
	return []events.Payload{events.SubscriptionLinked{
		SubscriptionID: c.SubscriptionID, Marketplace: c.Marketplace, LinkedAt: now, PreviousAccountID: c.HeldBy,
	}}, nil
}

func decideUnlink(a Account, c UnlinkSubscription, now time.Time) ([]events.Payload, error) {
	if err := checkSubscriptionID(c.SubscriptionID); err != nil {
		return nil, err
	}
	if a.Subscription.ID != c.SubscriptionID {
		return nil, Reject(CodeNotFound, "subscription %s is not linked to this account", c.SubscriptionID)
	}
	return []events.Payload{events.SubscriptionUnlinked{
		SubscriptionID: c.SubscriptionID, Marketplace: a.Subscription.Marketplace, Reason: events.UnlinkRequested,
		UnlinkedAt: now, GraceUntil: now.Add(SubscriptionGracePeriod),
	}}, nil
}

func decideTransfer(a Account, c TransferSubscription, now time.Time) ([]events.Payload, error) {
	if a.Subscription.ID != c.SubscriptionID {
		return nil, Reject(CodeInternal, "subscription %s is not linked to account %s", c.SubscriptionID, a.ID)
	}
	if a.Subscription.Marketplace != c.Marketplace {
		return nil, Reject(CodeInvalidArgument, "subscription %s is an %s subscription", c.SubscriptionID, a.Subscription.Marketplace)
	}
	if !ValidID(c.ToAccountID) || c.ToAccountID == a.ID {
		return nil, Reject(CodeInternal, "cannot move subscription %s from %s to %q", c.SubscriptionID, a.ID, c.ToAccountID)
	}
	return []events.Payload{events.SubscriptionUnlinked{
		SubscriptionID: c.SubscriptionID, Marketplace: a.Subscription.Marketplace, Reason: events.UnlinkMoved,
		MovedToAccountID: c.ToAccountID, UnlinkedAt: now, GraceUntil: now.Add(SubscriptionGracePeriod),
	}}, nil
}

func (a Account) evolveSubscription(p events.Payload) Account {
	switch e := p.(type) {
	case events.SubscriptionLinked:
		a.Subscription = Subscription{ID: e.SubscriptionID, Marketplace: e.Marketplace, LinkedAt: e.LinkedAt}
		a.GraceUntil, a.ExpiredAt = time.Time{}, time.Time{}
	case events.SubscriptionUnlinked:
		a.LapsedSubscription = a.Subscription
		if a.LapsedSubscription.ID != e.SubscriptionID {
			a.LapsedSubscription = Subscription{ID: e.SubscriptionID, Marketplace: e.Marketplace}
		}
		a.Subscription = Subscription{}
		a.GraceUntil, a.ExpiredAt = e.GraceUntil, time.Time{}
	case events.AccountExpired:
		a.ExpiredAt = e.ExpiredAt
	}
	return a
}
