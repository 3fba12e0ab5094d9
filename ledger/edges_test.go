package ledger_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// TestDomainRulesAtTheirEdges pins the DOMAIN rules at the instants and amounts where a
// comparison written the other way round (Before for !After, > for >=) or a check in the wrong
// order would decide differently. Each row names the rule it holds; docs/DOMAIN.md ("At the
// edges") says the same in words.
func TestDomainRulesAtTheirEdges(t *testing.T) {
	t.Parallel()
	exp := t0.AddDate(1, 0, 0)
	salesNoRenew := hist(active("s-1", ledger.SourceSales, "100", false, t0))
	salesRenew := hist(active("s-1", ledger.SourceSales, "100", true, t0))
	azureFamily := hist(active("az-1", ledger.SourceAzure, "10", true, t0),
		events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u1", ExpiresAt: exp, UpgradedAt: t0})
	back := t0.Add(ledger.SwitchInterval) // container_security back on credits at this instant
	switchedBack := hist(salesRenew, paygReady(t0),
		switched("container_security", ledger.ModelCredits, ledger.ModelPayg, t0),
		switched("container_security", ledger.ModelPayg, ledger.ModelCredits, back))
	// An AWS license bought now for a contract that started 13 months ago: its first term has
	// already been renewed, but the 4-hour activation window counts from the purchase.
	awsPastStart := hist(events.LicensePurchased{LicenseID: "aws-1", Source: ledger.SourceAWS, Credits: dec("10"), TermMonths: 12,
		AutoRenew: true, ContractStart: t0.AddDate(0, -13, 0), PurchasedAt: t0, ExpiresAt: t0.AddDate(0, -1, 0)},
		events.LicenseRenewed{LicenseID: "aws-1", PreviousExpiresAt: t0.AddDate(0, -1, 0), ExpiresAt: t0.AddDate(0, 11, 0)})

	runDecide(t, []decideCase{
		// "A license is activated once": an upgrade item shares its license's activation.
		{name: "activating an upgrade item is activating again", given: azureFamily, at: t0.AddDate(0, 1, 0),
			when: ledger.ActivateLicense{LicenseID: "az-1-u1"}, err: ledger.ErrAlreadyActivated},
		// AWS: "within four hours of setting the account up" (the purchase), whatever the contract start.
		{name: "aws past contract start activates 4h after the purchase", given: awsPastStart, at: t0.Add(4 * time.Hour),
			when: ledger.ActivateLicense{LicenseID: "aws-1"}, then: []events.Payload{activated("aws-1", t0.Add(4*time.Hour))}},
		{name: "aws past contract start refused 4h and 1ns after the purchase", given: awsPastStart, at: t0.Add(4*time.Hour + time.Nanosecond),
			when: ledger.ActivateLicense{LicenseID: "aws-1"}, err: ledger.ErrActivationWindowExpired},

		// "Credits are valid until the expiration date": at expires_at itself the term has ended.
		{name: "auto-renew turned on 1ns before the end of the term renews it", given: salesNoRenew, at: exp.Add(-time.Nanosecond),
			when: ledger.SetAutoRenew{LicenseID: "s-1", Enabled: true},
			then: []events.Payload{events.AutoRenewSet{LicenseID: "s-1", Enabled: true}},
			check: func(t *testing.T, a ledger.Account) {
				assertPayloads(t, []events.Payload{events.LicenseRenewed{LicenseID: "s-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)}},
					ledger.DueEvents(a, exp))
			}},
		{name: "auto-renew turned on exactly at the end of the term is too late", given: salesNoRenew, at: exp,
			when: ledger.SetAutoRenew{LicenseID: "s-1", Enabled: true}, err: ledger.ErrLicenseExpired},
		{name: "upgrade exactly at the end of a term that does not renew", given: salesNoRenew, at: exp,
			when: ledger.UpgradeContract{LicenseID: "s-1", AdditionalCredits: dec("1")}, err: ledger.ErrLicenseExpired},
		{name: "upgrade exactly at the end of a term that renews lands in the new term", given: salesRenew, at: exp,
			when: ledger.UpgradeContract{LicenseID: "s-1", AdditionalCredits: dec("1")},
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "s-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
				events.ContractUpgraded{LicenseID: "s-1", AdditionalCredits: dec("1"), ExpiresAt: exp.AddDate(1, 0, 0), UpgradedAt: exp},
			},
			check: func(t *testing.T, a ledger.Account) { assertDecimal(t, "101", a.TotalCredits(), "pool") }},
		{name: "release after the license lapsed under the allocation", given: hist(salesNoRenew, allocated("file_security", "100")), at: exp,
			when: ledger.ReleaseCredits{Feature: "file_security", Credits: dec("100")},
			then: []events.Payload{
				events.LicenseExpired{LicenseID: "s-1", ExpiredAt: exp},
				events.CreditsReleased{Feature: "file_security", Credits: dec("100"), Reason: events.ReleaseRequested},
			},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "0", a.Shortfall(), "shortfall")
				assertDecimal(t, "0", a.AvailableCredits(), "available")
			}},

		// "After a switch, switching that feature back must wait 30 days", in both directions.
		{name: "back to payg exactly 30 days after switching back to credits", given: switchedBack, at: back.Add(ledger.SwitchInterval),
			when: ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelPayg},
			then: []events.Payload{switched("container_security", ledger.ModelCredits, ledger.ModelPayg, back.Add(ledger.SwitchInterval))}},
		{name: "a feature back on credits may be allocated at once", given: switchedBack, at: back,
			when: ledger.AllocateCredits{Feature: "container_security", Credits: dec("100")},
			then: []events.Payload{allocated("container_security", "100")}},
		{name: "release from a feature on payg: it holds nothing", given: hist(salesRenew, paygReady(t0), allocated("file_security", "10"),
			events.CreditsReleased{Feature: "file_security", Credits: dec("10"), Reason: events.ReleaseSwitchedToPayg},
			switched("file_security", ledger.ModelCredits, ledger.ModelPayg, t0)), at: t0.Add(time.Hour),
			when: ledger.ReleaseCredits{Feature: "file_security", Credits: dec("1")}, err: ledger.ErrInsufficientAllocation,
			data: map[string]string{"allocated": "0", "requested": "1"}},

		// Azure "number of users": a whole number by value, whatever its scale or exponent.
		{name: "azure upgrade written with an exponent is a whole number", given: azureFamily, at: t0.AddDate(0, 1, 0),
			when: ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("1e1")},
			then: []events.Payload{events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("10"), ItemID: "az-1-u2", ExpiresAt: exp, UpgradedAt: t0.AddDate(0, 1, 0)}}},
		{name: "azure purchase a hair above 3 is not whole", err: ledger.ErrInvalidArgument,
			when: ledger.PurchaseLicense{LicenseID: "az-2", Source: ledger.SourceAzure, Credits: dec("3.00000000001")}},
		{name: "azure purchase a hair below 3", err: ledger.ErrInvalidArgument,
			when: ledger.PurchaseLicense{LicenseID: "az-2", Source: ledger.SourceAzure, Credits: dec("2.9999")}},
		{name: "azure purchase of 1e6 users is the maximum", when: ledger.PurchaseLicense{LicenseID: "az-2", Source: ledger.SourceAzure, Credits: dec("1e6"), AutoRenew: true},
			then: []events.Payload{purchased("az-2", ledger.SourceAzure, "1000000", true, t0)}},
		{name: "over-precise positive amounts are amounts (the wire limits digits)", given: salesRenew, at: t0.Add(time.Hour),
			when: ledger.AllocateCredits{Feature: "file_security", Credits: dec("0.000000000001")},
			then: []events.Payload{allocated("file_security", "0.000000000001")},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "99.999999999999", a.AvailableCredits(), "available")
			}},
	})
}

// A pending license (never activated) adds nothing to the pool at any point of its life, also
// after a renewal: only activation puts credits in.
func TestPendingLicenseNeverJoinsThePool(t *testing.T) {
	t.Parallel()
	a := fold(purchased("s-1", ledger.SourceSales, "100", true, t0))
	due := ledger.DueEvents(a, t0.AddDate(1, 0, 0))
	assert.Len(t, due, 1)
	a = apply(a, due...)
	assert.Equal(t, ledger.StatusPending, a.Licenses["s-1"].Status)
	assertDecimal(t, "0", a.TotalCredits(), "pool")
	assertDecimal(t, "0", a.AvailableCredits(), "available")
}
