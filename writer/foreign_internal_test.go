package writer

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
)

// Every event type is either noted for other partitions' accounts (foreignNoted) or known to
// carry nothing a load notes there: a new type fails here until it is put on one side.
func TestEveryEventTypeIsClassifiedForForeignLoads(t *testing.T) {
	t.Parallel()
	carriesNothing := map[string]bool{
		events.TypeLicenseActivated: true, events.TypeCreditsAllocated: true, events.TypeCreditsReleased: true,
		events.TypeAutoRenewSet: true, events.TypePaygContractActivated: true, events.TypeBillingModelSwitched: true,
		events.TypeLicenseRenewed: true, events.TypeLicenseExpired: true, events.TypeUsageRecorded: true,
		events.TypeAccountExpired: true,
	}
	for _, typ := range events.Types() {
		assert.True(t, foreignNoted[typ] != carriesNothing[typ],
			"%s: say whether a load notes it for another partition's account (foreignNoted, createdIDs, ownSubscription)", typ)
	}
}

// mayNoteForeign finds every event that apply notes for another partition's account, under both
// hash rules, and lets the others through undecoded; an envelope it cannot read the type of is
// decoded.
func TestMayNoteForeign(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	noted := []events.Payload{
		events.LicensePurchased{LicenseID: "L-1", Source: "sales", Credits: decimal.NewFromInt(10), TermMonths: 12, ContractStart: at, PurchasedAt: at, ExpiresAt: at.AddDate(1, 0, 0)},
		events.ContractUpgraded{LicenseID: "L-1", AdditionalCredits: decimal.NewFromInt(5), ItemID: "I-1", ExpiresAt: at, UpgradedAt: at},
		events.PaygContractPurchased{ContractID: "P-1", PurchasedAt: at},
		events.SubscriptionLinked{SubscriptionID: "S-1", Marketplace: "aws_marketplace", LinkedAt: at, PreviousAccountID: "b"},
		events.SubscriptionUnlinked{SubscriptionID: "S-1", Marketplace: "aws_marketplace", Reason: "moved", MovedToAccountID: "b", UnlinkedAt: at, GraceUntil: at},
	}
	skipped := []events.Payload{
		events.CreditsAllocated{Feature: "file_security", Credits: decimal.NewFromInt(1)},
		events.CreditsReleased{Feature: "file_security", Credits: decimal.NewFromInt(1), Reason: events.ReleaseRequested},
	}
	encode := func(p events.Payload, legacy bool) []byte {
		raw, err := events.EncodePayload(p)
		require.NoError(t, err)
		env := events.Envelope{EventID: "e-1", Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()),
			AccountID: "a", Version: 3, OccurredAt: at, CommandID: "c-1", Payload: raw, PrevHash: "00"}
		if legacy {
			require.NoError(t, env.SealLegacy())
			b, err := events.Encode(&env)
			require.NoError(t, err)
			return b
		}
		b, err := env.SealEncode()
		require.NoError(t, err)
		return b
	}
	for _, legacy := range []bool{false, true} {
		for _, p := range noted {
			b := encode(p, legacy)
			assert.True(t, mayNoteForeign(b), "legacy %v: %s", legacy, b)
			ev, err := events.Decode(b)
			require.NoError(t, err)
			assert.True(t, len(createdIDs(ev.Data)) > 0 || p.EventType() == events.TypeSubscriptionLinked ||
				p.EventType() == events.TypeSubscriptionUnlinked, "the sample carries what a load notes: %s", b)
		}
		for _, p := range skipped {
			b := encode(p, legacy)
			assert.False(t, mayNoteForeign(b), "legacy %v: %s", legacy, b)
		}
	}
	assert.True(t, mayNoteForeign([]byte(`{"type": "LicensePurchased","payload":{}}`)), "a type written otherwise is decoded")
	assert.True(t, mayNoteForeign([]byte(`not json`)))
	assert.True(t, mayNoteForeign([]byte(`{"payload":{"type":"x"},"type":"LicensePurchased"}`)), "the envelope's type after a payload's")
	assert.False(t, mayNoteForeign([]byte(`{"payload":{"type":"LicensePurchased_"},"type":"CreditsAllocated"}`)))
	assert.True(t, mayNoteForeign([]byte(`{"payload":{"type":"LicensePurchased"},"type":"CreditsAllocated"}`)),
		"a payload member that reads like a noted type is decoded: harmless")
	assert.True(t, mayNoteForeign([]byte(`{"type":"LicensePurch`)), "cut short: decoded (and refused there)")
}
