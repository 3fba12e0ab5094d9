package ledger_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// DOMAIN: on both marketplaces (AWS and Azure) each increase of a license's credits appears as a
// separate item in the license list, with the same expiration date as the license it extends
// (issue 16). Azure's whole-number and 1,000,000-user limits stay Azure's.
func TestDecideAWSUpgradeItems(t *testing.T) {
	t.Parallel()
	at := t0.AddDate(0, 1, 0)
	exp := t0.AddDate(1, 0, 0)
	aws := hist(active("aws-1", ledger.SourceAWS, "800", true, t0))
	item := func(id, credits string) events.ContractUpgraded {
		return events.ContractUpgraded{LicenseID: "aws-1", AdditionalCredits: dec(credits), ItemID: id, ExpiresAt: exp, UpgradedAt: t0.AddDate(0, 0, 1)}
	}
	upgraded := func(id, credits string) []events.Payload {
		return []events.Payload{events.ContractUpgraded{LicenseID: "aws-1", AdditionalCredits: dec(credits), ItemID: id, ExpiresAt: exp, UpgradedAt: at}}
	}
	runDecide(t, []decideCase{
		{
			name:  "an aws upgrade is a new item with the parent's expiry and a default id",
			given: aws,
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("100")},
			at:    at,
			then:  upgraded("aws-1-u1", "100"),
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, []string{"aws-1", "aws-1-u1"}, a.LicenseOrder)
				it := a.Licenses["aws-1-u1"]
				assert.Equal(t, "aws-1", it.ParentID)
				assert.Equal(t, ledger.SourceAWS, it.Source)
				assert.Equal(t, ledger.StatusActive, it.Status)
				assert.True(t, it.AutoRenew, "the item takes the parent's auto-renew")
				assert.True(t, it.ExpiresAt.Equal(a.Licenses["aws-1"].ExpiresAt), "item expires with its parent")
				assertDecimal(t, "100", it.Credits, "item credits")
				assertDecimal(t, "800", a.Licenses["aws-1"].Credits, "parent credits are unchanged")
				assertDecimal(t, "900", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "second aws upgrade gets the next default id",
			given: hist(aws, item("aws-1-u1", "100")),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("7")},
			at:    at,
			then:  upgraded("aws-1-u2", "7"),
		},
		{
			name:  "default aws item id skips an id another license holds",
			given: hist(aws, purchased("aws-1-u1", ledger.SourceSales, "1", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("7")},
			at:    at,
			then:  upgraded("aws-1-u2", "7"),
		},
		{
			name:  "aws upgrade with a chosen item id",
			given: aws,
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("20"), ItemID: "aws-extra"},
			at:    at,
			then:  upgraded("aws-extra", "20"),
		},
		{
			name:  "aws item id held by another license",
			given: hist(aws, purchased("lic-9", ledger.SourceSales, "1", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("20"), ItemID: "lic-9"},
			at:    at,
			err:   ledger.ErrAlreadyExists,
		},
		{
			name:  "aws item id held by an existing item",
			given: hist(aws, item("aws-1-u1", "100")),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("20"), ItemID: "aws-1-u1"},
			at:    at,
			err:   ledger.ErrAlreadyExists,
		},
		{
			name:  "aws item id with bad characters",
			given: aws,
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("20"), ItemID: "aws 1>"},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "aws upgrades need not be whole numbers (an azure rule)",
			given: aws,
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("2.5")},
			at:    at,
			then:  upgraded("aws-1-u1", "2.5"),
		},
		{
			name:  "an aws license may grow beyond 1,000,000 credits (an azure rule)",
			given: hist(active("aws-1", ledger.SourceAWS, "999990", true, t0), item("aws-1-u1", "5")),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("100")},
			at:    at,
			then:  upgraded("aws-1-u2", "100"),
		},
		{
			name:  "upgrading an aws upgrade item",
			given: hist(aws, item("aws-1-u1", "100")),
			when:  ledger.UpgradeContract{LicenseID: "aws-1-u1", AdditionalCredits: dec("5")},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "aws upgrade of a pending license",
			given: hist(purchased("aws-1", ledger.SourceAWS, "800", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("5")},
			at:    t0.Add(time.Hour),
			err:   ledger.ErrLicenseNotActive,
		},
		{
			name:  "aws upgrade after a due renewal takes the renewed expiry",
			given: aws,
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("5")},
			at:    exp.AddDate(0, 0, 1),
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "aws-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
				events.ContractUpgraded{LicenseID: "aws-1", AdditionalCredits: dec("5"), ItemID: "aws-1-u1", ExpiresAt: exp.AddDate(1, 0, 0), UpgradedAt: exp.AddDate(0, 0, 1)},
			},
		},
		{
			name:  "aws upgrade after one stored before upgrades were items",
			given: hist(aws, events.ContractUpgraded{LicenseID: "aws-1", AdditionalCredits: dec("100"), ExpiresAt: exp, UpgradedAt: t0.AddDate(0, 0, 1)}),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("50")},
			at:    at,
			then:  upgraded("aws-1-u1", "50"),
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, []string{"aws-1", "aws-1-u1"}, a.LicenseOrder)
				assertDecimal(t, "900", a.Licenses["aws-1"].Credits, "the stored upgrade stays in the license's own credits")
				assertDecimal(t, "50", a.Licenses["aws-1-u1"].Credits, "the new upgrade is an item")
				assertDecimal(t, "950", a.TotalCredits(), "pool")
			},
		},
	})
}

// DOMAIN: AWS upgrade items share their license's term: auto-renew, renewal and expiry.
func TestAWSItemsFollowTheirParent(t *testing.T) {
	t.Parallel()
	exp := t0.AddDate(1, 0, 0)
	family := hist(active("aws-1", ledger.SourceAWS, "10", true, t0),
		events.ContractUpgraded{LicenseID: "aws-1", AdditionalCredits: dec("5.5"), ItemID: "aws-1-u1", ExpiresAt: exp, UpgradedAt: t0.AddDate(0, 1, 0)})
	runDecide(t, []decideCase{
		{
			name:  "auto-renew set on the license applies to its items",
			given: family,
			when:  ledger.SetAutoRenew{LicenseID: "aws-1", Enabled: false},
			at:    t0.AddDate(0, 2, 0),
			then:  []events.Payload{events.AutoRenewSet{LicenseID: "aws-1", Enabled: false}},
			check: func(t *testing.T, a ledger.Account) { assert.False(t, a.Licenses["aws-1-u1"].AutoRenew) },
		},
		{name: "auto-renew of an item", given: family, at: t0.AddDate(0, 2, 0), when: ledger.SetAutoRenew{LicenseID: "aws-1-u1"}, err: ledger.ErrInvalidArgument},
		{
			name:  "aws items renew with their parent",
			given: family,
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseRenewed{LicenseID: "aws-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)}},
			check: func(t *testing.T, a ledger.Account) {
				assert.True(t, a.Licenses["aws-1-u1"].ExpiresAt.Equal(exp.AddDate(1, 0, 0)), "item expiry follows the parent")
				assert.Equal(t, ledger.StatusActive, a.Licenses["aws-1-u1"].Status)
				assertDecimal(t, "15.5", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "aws items expire with their parent",
			given: hist(family, events.AutoRenewSet{LicenseID: "aws-1"}),
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseExpired{LicenseID: "aws-1", ExpiredAt: exp}},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, ledger.StatusExpired, a.Licenses["aws-1-u1"].Status)
				assertDecimal(t, "0", a.TotalCredits(), "pool")
			},
		},
	})
}

// storedAWSHistory is an AWS license upgraded by the code before issue 16, as it sits in the
// LEDGER stream: the ContractUpgraded payload has no item_id. Stored events are never edited, so
// this build must fold them to the balance they always gave.
var storedAWSHistory = []struct{ typ, payload string }{
	{events.TypeLicensePurchased, `{"license_id":"aws-old","source":"aws_marketplace","credits":"800","term_months":12,"auto_renew":true,"contract_start":"2025-03-10T09:00:00Z","purchased_at":"2025-03-10T09:00:00Z","expires_at":"2026-03-10T09:00:00Z"}`},
	{events.TypeLicenseActivated, `{"license_id":"aws-old","activated_at":"2025-03-10T10:00:00Z"}`},
	{events.TypeContractUpgraded, `{"license_id":"aws-old","additional_credits":"100","expires_at":"2026-03-10T09:00:00Z","upgraded_at":"2025-04-10T09:00:00Z"}`},
	{events.TypeCreditsAllocated, `{"feature":"container_security","credits":"250"}`},
}

// sealStored seals the stored payloads into a hash-chained envelope stream and decodes it back,
// the way a replay reads the stream.
func sealStored(t *testing.T) []events.Event {
	t.Helper()
	prev := events.ZeroHash
	out := make([]events.Event, 0, len(storedAWSHistory))
	for i, s := range storedAWSHistory {
		env := events.Envelope{
			EventID: fmt.Sprintf("ev-%d", i+1), Type: s.typ, SchemaVersion: events.SchemaVersion(s.typ), AccountID: acct,
			Version: uint64(i + 1), OccurredAt: t0, CommandID: fmt.Sprintf("cmd-%d", i+1), Payload: json.RawMessage(s.payload), PrevHash: prev,
		}
		raw, err := env.SealEncode()
		require.NoError(t, err)
		prev = env.Hash
		ev, err := events.Decode(raw)
		require.NoError(t, err, "a stored %s must still decode", s.typ)
		require.True(t, ev.VerifyHash(), "the stored bytes are unchanged")
		out = append(out, ev)
	}
	return out
}

// An AWS upgrade stored without an item id keeps folding to today's balance: the license's own
// credits grow, no item appears, and the pool, allocation and available credits stay as they were.
func TestStoredAWSUpgradeWithoutItemFoldsAsBefore(t *testing.T) {
	t.Parallel()
	a := ledger.NewAccount(acct)
	for _, ev := range sealStored(t) {
		a = ledger.Evolve(a, ev)
	}
	assert.Equal(t, []string{"aws-old"}, a.LicenseOrder, "an upgrade stored without an item id is no item")
	assertDecimal(t, "900", a.Licenses["aws-old"].Credits, "license credits")
	assertDecimal(t, "900", a.TotalCredits(), "pool")
	assertDecimal(t, "250", a.AllocatedCredits(), "allocated")
	assertDecimal(t, "650", a.AvailableCredits(), "available")

	// The next upgrade of the same license is an item; the stored one stays where it was.
	got, err := rules.Decide(a, ledger.UpgradeContract{LicenseID: "aws-old", AdditionalCredits: dec("50")}, t0.AddDate(0, 2, 0))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "aws-old-u1", got[0].(events.ContractUpgraded).ItemID)
	a = apply(a, got...)
	assertDecimal(t, "900", a.Licenses["aws-old"].Credits, "license credits")
	assertDecimal(t, "950", a.TotalCredits(), "pool")
}
