package ledger_test

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

func vcenterUsage(id, qty, size, conn string) ledger.RecordUsage {
	c := workloadUsage(id, qty, size, conn, sw)
	c.VCenter = true
	return c
}

// DOMAIN: a computer that is part of a vCenter account has its protection hours billed at the
// highest, data-center rate, whatever its size, even when a cloud connector is named; the
// event's rate_reason says so (issue 16).
func TestDecideRecordUsageVCenter(t *testing.T) {
	t.Parallel()
	dcRate := map[string]decimal.Decimal{asw + ":data_center": dec("0.05"), asw + ":large": dec("0.02")}
	withRates := hist(
		events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0, Rates: dcRate},
		events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: t0},
		switched(asw, ledger.ModelCredits, ledger.ModelPayg, sw))
	event := func(c ledger.RecordUsage, key, rate, source, card, reason, amount string) events.UsageRecorded {
		return events.UsageRecorded{
			UsageID: c.UsageID, Feature: asw, Quantity: c.Quantity, Unit: "hours", OccurredAt: sw, RecordedAt: now,
			InstanceSize: c.InstanceSize, CloudConnector: c.CloudConnector, VCenter: c.VCenter, ContractID: "payg-1",
			RateKey: key, Rate: dec(rate), RateSource: source, RateCard: card, RateReason: reason, Amount: dec(amount), Currency: "USD",
		}
	}
	runDecide(t, []decideCase{
		{
			name: "a vCenter computer under a cloud connector pays the data-center rate", given: paygFeatures(), at: now,
			when: vcenterUsage("u1", "10", "large", "aws"),
			then: []events.Payload{event(vcenterUsage("u1", "10", "large", "aws"), asw+":data_center", "0.06", events.RateFromCard, "2026-01",
				"a computer that is part of a vCenter account pays the data-center rate whatever its size (large) and cloud connector (aws); the contract has no rate for "+asw+":data_center: rate card 2026-01 applies",
				"0.6")},
			check: func(t *testing.T, a ledger.Account) {
				assert.True(t, a.Usage["u1"].VCenter)
				assertDecimal(t, "0.6", a.Usage["u1"].Amount, "10 h x 0.06, not the large rate 0.024")
			},
		},
		{
			name: "a vCenter computer without a connector pays the data-center rate", given: paygFeatures(), at: now,
			when: vcenterUsage("u1", "1", "medium", "none"),
			then: []events.Payload{event(vcenterUsage("u1", "1", "medium", "none"), asw+":data_center", "0.06", events.RateFromCard, "2026-01",
				"a computer that is part of a vCenter account pays the data-center rate whatever its size (medium) and cloud connector (none); the contract has no rate for "+asw+":data_center: rate card 2026-01 applies",
				"0.06")},
		},
		{
			name: "the contract's data-center rate applies to a vCenter computer", given: withRates, at: now,
			when: vcenterUsage("u1", "10", "large", "gcp"),
			then: []events.Payload{event(vcenterUsage("u1", "10", "large", "gcp"), asw+":data_center", "0.05", events.RateFromContract, "",
				"a computer that is part of a vCenter account pays the data-center rate whatever its size (large) and cloud connector (gcp); the contract's rate for "+asw+":data_center",
				"0.5")},
		},
		{
			name: "the same computer outside vCenter pays its size's rate", given: withRates, at: now,
			when: workloadUsage("u1", "10", "large", "gcp", sw),
			then: []events.Payload{event(workloadUsage("u1", "10", "large", "gcp", sw), asw+":large", "0.02", events.RateFromContract, "",
				"a large computer under the gcp cloud connector pays the large rate; the contract's rate for "+asw+":large", "0.2")},
		},
		{
			name: "vcenter on a feature that is not instance-sized", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: ledger.RecordUsage{UsageID: "u1", Feature: "file_security", Quantity: dec("1"), Unit: "gb", OccurredAt: sw, VCenter: true},
		},
		{
			name: "vcenter does not stand in for the size", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: vcenterUsage("u1", "1", "", "aws"),
		},
		{
			name: "vcenter does not stand in for the connector", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: vcenterUsage("u1", "1", "large", ""),
		},
	})
}

// A usage_id repeated with another vcenter flag is other content: idempotency_key_reused. A
// usage stored before the flag existed (no vcenter in its event) is no vCenter computer.
func TestRecordUsageRepeatComparesVCenter(t *testing.T) {
	t.Parallel()
	fold1 := func(c ledger.RecordUsage) ledger.Account {
		a := fold(paygFeatures()...)
		ps, err := rules.Decide(a, c, now)
		require.NoError(t, err)
		return apply(a, ps...)
	}
	plain, vc := fold1(workloadUsage("u1", "10", "large", "aws", sw)), fold1(vcenterUsage("u1", "10", "large", "aws"))
	assert.False(t, plain.Usage["u1"].VCenter)

	var dup *ledger.DuplicateUsage
	_, err := rules.Decide(plain, workloadUsage("u1", "10", "large", "aws", sw), now)
	assert.ErrorAs(t, err, &dup, "the same content without vcenter is a repeat")
	_, err = rules.Decide(vc, vcenterUsage("u1", "10", "large", "aws"), now)
	assert.ErrorAs(t, err, &dup, "the same content with vcenter is a repeat")
	_, err = rules.Decide(plain, vcenterUsage("u1", "10", "large", "aws"), now)
	assert.ErrorIs(t, err, ledger.ErrIdempotencyReused)
	_, err = rules.Decide(vc, workloadUsage("u1", "10", "large", "aws", sw), now)
	assert.ErrorIs(t, err, ledger.ErrIdempotencyReused)
}
