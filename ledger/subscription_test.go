package ledger_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

func linked(id string, at time.Time) events.SubscriptionLinked {
	return events.SubscriptionLinked{SubscriptionID: id, Marketplace: ledger.MarketplaceAWS, LinkedAt: at}
}

func unlinked(id, reason, to string, at time.Time) events.SubscriptionUnlinked {
	return events.SubscriptionUnlinked{SubscriptionID: id, Marketplace: ledger.MarketplaceAWS, Reason: reason,
		MovedToAccountID: to, UnlinkedAt: at, GraceUntil: at.Add(ledger.SubscriptionGracePeriod)}
}

func link(id string) ledger.LinkSubscription {
	return ledger.LinkSubscription{SubscriptionID: id, Marketplace: ledger.MarketplaceAWS}
}

func assertStatus(status, path string) func(*testing.T, ledger.Account) {
	return func(t *testing.T, a ledger.Account) {
		t.Helper()
		assert.Equal(t, status, a.Status(), "status")
		assert.Equal(t, path, a.BillingPath(), "billing path")
	}
}

func TestDecideLinkSubscription(t *testing.T) {
	t.Parallel()
	expiredSales := hist(active("s-1", ledger.SourceSales, "10", false, t0.AddDate(-2, 0, 0)),
		events.LicenseExpired{LicenseID: "s-1", ExpiredAt: t0.AddDate(-1, 0, 0)})
	runDecide(t, []decideCase{
		{name: "first link", when: link("sub-1"), then: []events.Payload{linked("sub-1", t0)},
			check: assertStatus(ledger.AccountStatusActive, ledger.BillingMarketplace)},
		{name: "a move records the previous holder",
			when: ledger.LinkSubscription{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAzure, HeldBy: "acc-0"},
			then: []events.Payload{events.SubscriptionLinked{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAzure, LinkedAt: t0, PreviousAccountID: "acc-0"}}},
		{name: "while an active sales license exists", given: active("s-1", ledger.SourceSales, "10", true, t0),
			when: link("sub-1"), err: ledger.ErrSubscriptionConflict, data: map[string]string{"license_id": "s-1"}},
		{name: "while a pending sales license exists", given: hist(purchased("s-1", ledger.SourceSales, "10", true, t0)),
			when: link("sub-1"), err: ledger.ErrSubscriptionConflict},
		{name: "after the sales license expired", given: expiredSales, when: link("sub-1"), then: []events.Payload{linked("sub-1", t0)}},
		{name: "beside marketplace credits licenses", given: active("aws-1", ledger.SourceAWS, "10", true, t0),
			when: link("sub-1"), then: []events.Payload{linked("sub-1", t0)}},
		{name: "while another subscription is linked", given: hist(linked("sub-0", t0)),
			when: link("sub-1"), err: ledger.ErrSubscriptionConflict, data: map[string]string{"subscription_id": "sub-0"}},
		{name: "the same subscription again changes nothing", given: hist(linked("sub-1", t0)), when: link("sub-1"), then: nil},
		{name: "the same subscription from another marketplace", given: hist(linked("sub-1", t0)), err: ledger.ErrInvalidArgument,
			when: ledger.LinkSubscription{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAzure}},
		{name: "unknown marketplace", err: ledger.ErrInvalidArgument,
			when: ledger.LinkSubscription{SubscriptionID: "sub-1", Marketplace: "gcp"}},
		{name: "bad subscription id", err: ledger.ErrInvalidArgument, when: link("sub 1")},
		{name: "during the grace period ends it", given: hist(linked("sub-0", t0), unlinked("sub-0", events.UnlinkRequested, "", t0)),
			when: link("sub-1"), at: t0.Add(time.Hour), then: []events.Payload{linked("sub-1", t0.Add(time.Hour))},
			check: func(t *testing.T, a ledger.Account) {
				assertStatus(ledger.AccountStatusActive, ledger.BillingMarketplace)(t, a)
				assert.True(t, a.GraceUntil.IsZero())
				assert.Empty(t, ledger.DueEvents(a, t0.AddDate(1, 0, 0)), "no expiry is due any more")
			}},
		{name: "after the grace period the expiry comes first",
			given: hist(linked("sub-0", t0), unlinked("sub-0", events.UnlinkRequested, "", t0)),
			when:  link("sub-1"), at: t0.Add(72 * time.Hour),
			then: []events.Payload{
				events.AccountExpired{Reason: events.AccountExpiredReason, SubscriptionID: "sub-0", ExpiredAt: t0.Add(48 * time.Hour)},
				linked("sub-1", t0.Add(72*time.Hour)),
			},
			check: assertStatus(ledger.AccountStatusActive, ledger.BillingMarketplace)},
	})
}

func TestDecidePurchaseWhileSubscribed(t *testing.T) {
	t.Parallel()
	buy := func(source string) ledger.PurchaseLicense {
		return ledger.PurchaseLicense{LicenseID: "L-1", Source: source, Credits: dec("10"), TermMonths: 12, AutoRenew: true}
	}
	runDecide(t, []decideCase{
		{name: "a sales license while linked", given: hist(linked("sub-1", t0)), when: buy(ledger.SourceSales),
			err: ledger.ErrSubscriptionConflict, data: map[string]string{"subscription_id": "sub-1"}},
		{name: "a marketplace license while linked", given: hist(linked("sub-1", t0)), when: buy(ledger.SourceAWS),
			then: []events.Payload{purchased("L-1", ledger.SourceAWS, "10", true, t0)}},
		{name: "a sales license after unlinking", given: hist(linked("sub-1", t0), unlinked("sub-1", events.UnlinkRequested, "", t0)),
			when: buy(ledger.SourceSales), then: []events.Payload{purchased("L-1", ledger.SourceSales, "10", true, t0)}},
	})
}

func TestDecideUnlinkAndTransfer(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "unlink starts the grace period", given: hist(linked("sub-1", t0)), at: t0.Add(time.Hour),
			when: ledger.UnlinkSubscription{SubscriptionID: "sub-1"},
			then: []events.Payload{unlinked("sub-1", events.UnlinkRequested, "", t0.Add(time.Hour))},
			check: func(t *testing.T, a ledger.Account) {
				assertStatus(ledger.AccountStatusGrace, ledger.BillingNone)(t, a)
				assert.Equal(t, t0.Add(49*time.Hour), a.GraceUntil)
				assert.Equal(t, "sub-1", a.LapsedSubscription.ID)
			}},
		{name: "unlink of a subscription not linked here", given: hist(linked("sub-1", t0)),
			when: ledger.UnlinkSubscription{SubscriptionID: "sub-2"}, err: ledger.ErrNotFound},
		{name: "unlink with nothing linked", when: ledger.UnlinkSubscription{SubscriptionID: "sub-2"}, err: ledger.ErrNotFound},
		{name: "the holder's side of a move", given: hist(linked("sub-1", t0)), at: t0.Add(time.Hour),
			when:  ledger.TransferSubscription{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAWS, ToAccountID: "acc-2"},
			then:  []events.Payload{unlinked("sub-1", events.UnlinkMoved, "acc-2", t0.Add(time.Hour))},
			check: assertStatus(ledger.AccountStatusGrace, ledger.BillingNone)},
		{name: "a move from another marketplace", given: hist(linked("sub-1", t0)), err: ledger.ErrInvalidArgument,
			when: ledger.TransferSubscription{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAzure, ToAccountID: "acc-2"}},
		{name: "a move of a subscription the account does not hold", err: ledger.ErrInternal,
			when: ledger.TransferSubscription{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAWS, ToAccountID: "acc-2"}},
	})
}

func TestGracePeriodExpiry(t *testing.T) {
	t.Parallel()
	given := hist(active("aws-1", ledger.SourceAWS, "10", true, t0), linked("sub-1", t0), unlinked("sub-1", events.UnlinkMoved, "acc-2", t0))
	graceEnd := t0.Add(ledger.SubscriptionGracePeriod)
	expired := events.AccountExpired{Reason: events.AccountExpiredReason, SubscriptionID: "sub-1", ExpiredAt: graceEnd}
	runDecide(t, []decideCase{
		{name: "nothing due 1ns before the grace period ends", given: given, when: ledger.AdvanceTime{}, at: graceEnd.Add(-time.Nanosecond),
			then: nil},
		{name: "expired when the grace period ends", given: given, when: ledger.AdvanceTime{}, at: graceEnd,
			then: []events.Payload{expired},
			check: func(t *testing.T, a ledger.Account) {
				assertStatus(ledger.AccountStatusExpired, ledger.BillingAnnual)(t, a)
				assert.Equal(t, graceEnd, a.ExpiredAt)
				assert.Empty(t, ledger.DueEvents(a, graceEnd.AddDate(0, 0, 1)), "expired once")
			}},
		{name: "expired at the end of the grace period even when processed late", given: given, when: ledger.AdvanceTime{},
			at: graceEnd.Add(7 * 24 * time.Hour), then: []events.Payload{expired}},
		{name: "an account that never had a subscription never expires", when: ledger.AdvanceTime{}, at: graceEnd.AddDate(5, 0, 0)},
	})
}

func TestBillingPath(t *testing.T) {
	t.Parallel()
	assert.Equal(t, ledger.BillingNone, fold().BillingPath())
	assert.Equal(t, ledger.AccountStatusActive, fold().Status())
	assert.Equal(t, ledger.BillingNone, fold(purchased("s-1", ledger.SourceSales, "10", true, t0)).BillingPath(), "a pending license does not pay")
	assert.Equal(t, ledger.BillingAnnual, fold(active("s-1", ledger.SourceSales, "10", true, t0)...).BillingPath())
	assert.Equal(t, ledger.BillingMarketplace, fold(hist(active("a-1", ledger.SourceAWS, "10", true, t0), linked("sub-1", t0))...).BillingPath())
}

// TestNextDueGracePeriod: the end of a grace period is due on its own, before a license that
// expires later, and not after the account has expired or while a subscription is linked.
func TestNextDueGracePeriod(t *testing.T) {
	t.Parallel()
	graceEnd := t0.Add(ledger.SubscriptionGracePeriod)
	lapsed := fold(hist(active("aws-1", ledger.SourceAWS, "10", true, t0), linked("sub-1", t0), unlinked("sub-1", events.UnlinkMoved, "acc-2", t0))...)
	at, ok := ledger.NextDue(lapsed)
	require.True(t, ok)
	assert.Equal(t, graceEnd, at, "the grace period ends long before the license's year")

	expired := apply(lapsed, events.AccountExpired{Reason: events.AccountExpiredReason, SubscriptionID: "sub-1", ExpiredAt: graceEnd})
	at, ok = ledger.NextDue(expired)
	require.True(t, ok)
	assert.Equal(t, lapsed.Licenses["aws-1"].ExpiresAt, at, "only the license is left to fall due")

	linkedNow := fold(hist(linked("sub-1", t0))...)
	_, ok = ledger.NextDue(linkedNow)
	assert.False(t, ok, "a linked account with no license has nothing due")
}
