package ledger_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// The usage tables share one timeline: a PAYG contract active at t0, file_security and workload
// protection switched to PAYG at sw, and usage decided at now.
var (
	sw  = t0.Add(time.Hour)
	now = t0.Add(24 * time.Hour)
)

func paygFeatures() []events.Payload {
	return hist(paygReady(t0),
		switched("file_security", ledger.ModelCredits, ledger.ModelPayg, sw),
		switched(asw, ledger.ModelCredits, ledger.ModelPayg, sw))
}

func fileUsage(id, qty string, at time.Time) ledger.RecordUsage {
	return ledger.RecordUsage{UsageID: id, Feature: "file_security", Quantity: dec(qty), Unit: "gb", OccurredAt: at}
}

func workloadUsage(id, qty, size, conn string, at time.Time) ledger.RecordUsage {
	return ledger.RecordUsage{UsageID: id, Feature: asw, Quantity: dec(qty), Unit: "hours", OccurredAt: at,
		InstanceSize: size, CloudConnector: conn}
}

// recorded is the UsageRecorded event Decide must produce for c at now under a contract's rates,
// with the rate (and its reason) resolved by the rate card under test.
func recorded(t *testing.T, c ledger.RecordUsage, contractID string, rates map[string]decimal.Decimal) events.UsageRecorded {
	t.Helper()
	card := ledger.DefaultRateCard()
	f, ok := ledger.DefaultCatalogue().Feature(c.Feature)
	require.True(t, ok)
	r, err := card.Resolve(rates, c.Feature, f.InstanceSized, c.InstanceSize, c.CloudConnector, c.VCenter)
	require.NoError(t, err)
	p := events.UsageRecorded{
		UsageID: c.UsageID, Feature: c.Feature, Quantity: c.Quantity, Unit: c.Unit, OccurredAt: c.OccurredAt,
		RecordedAt: now, InstanceSize: c.InstanceSize, CloudConnector: c.CloudConnector, VCenter: c.VCenter, ContractID: contractID,
		RateKey: r.Key, Rate: r.Rate, RateSource: r.Source, RateReason: r.Reason, Amount: c.Quantity.Mul(r.Rate), Currency: "USD",
	}
	if r.Source == events.RateFromCard {
		p.RateCard = card.Version
	}
	return p
}

func TestDecideRecordUsage(t *testing.T) {
	t.Parallel()
	rates := map[string]decimal.Decimal{"file_security": dec("0.05")}
	withRates := hist(
		events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0, Rates: rates},
		events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: t0},
		switched("file_security", ledger.ModelCredits, ledger.ModelPayg, sw))
	runDecide(t, []decideCase{
		{
			name: "usage after the switch is billed at the card rate", given: paygFeatures(), at: now,
			when: fileUsage("u1", "10", sw.Add(time.Minute)),
			then: []events.Payload{recorded(t, fileUsage("u1", "10", sw.Add(time.Minute)), "payg-1", nil)},
			check: func(t *testing.T, a ledger.Account) {
				u := a.Usage["u1"]
				assertDecimal(t, "0.3", u.Amount, "10 gb x 0.03")
				assert.Equal(t, "payg-1", u.ContractID)
			},
		},
		{
			name: "usage at the switch instant is billed", given: paygFeatures(), at: now,
			when: fileUsage("u1", "1", sw),
			then: []events.Payload{recorded(t, fileUsage("u1", "1", sw), "payg-1", nil)},
		},
		{
			name: "usage 1ns before the switch is rejected", given: paygFeatures(), at: now,
			when: fileUsage("u1", "1", sw.Add(-time.Nanosecond)), err: ledger.ErrFeatureNotOnPayg,
		},
		{
			name: "usage of a feature never switched is rejected", given: paygFeatures(), at: now,
			when: ledger.RecordUsage{UsageID: "u1", Feature: "container_security", Quantity: dec("1"), Unit: "hours", OccurredAt: sw},
			err:  ledger.ErrFeatureNotOnPayg,
		},
		{
			name:  "usage after switching back to credits is rejected",
			given: hist(paygFeatures(), switched("file_security", ledger.ModelPayg, ledger.ModelCredits, sw.Add(2*time.Hour))),
			at:    now, when: fileUsage("u1", "1", sw.Add(3*time.Hour)), err: ledger.ErrFeatureNotOnPayg,
		},
		{
			name:  "usage from the PAYG period recorded after switching back is billed",
			given: hist(paygFeatures(), switched("file_security", ledger.ModelPayg, ledger.ModelCredits, sw.Add(2*time.Hour))),
			at:    now, when: fileUsage("u1", "1", sw.Add(time.Hour)),
			then: []events.Payload{recorded(t, fileUsage("u1", "1", sw.Add(time.Hour)), "payg-1", nil)},
		},
		{
			name: "the contract's own rate wins over the card", given: withRates, at: now,
			when: fileUsage("u1", "10", sw),
			then: []events.Payload{recorded(t, fileUsage("u1", "10", sw), "payg-1", rates)},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "0.5", a.Usage["u1"].Amount, "10 gb x 0.05")
			},
		},
		{
			name: "amounts keep full precision", given: paygFeatures(), at: now,
			when: workloadUsage("u1", "1.2345", "large", "aws", sw),
			then: []events.Payload{recorded(t, workloadUsage("u1", "1.2345", "large", "aws", sw), "payg-1", nil)},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "0.029628", a.Usage["u1"].Amount, "1.2345 h x 0.024")
			},
		},
		{
			name: "a computer outside a connector pays the data-center rate", given: paygFeatures(), at: now,
			when: workloadUsage("u1", "10", "medium", "none", sw),
			then: []events.Payload{recorded(t, workloadUsage("u1", "10", "medium", "none", sw), "payg-1", nil)},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "0.6", a.Usage["u1"].Amount, "10 h x 0.06")
			},
		},
		{name: "unknown feature", given: paygFeatures(), at: now, err: ledger.ErrUnknownFeature,
			when: ledger.RecordUsage{UsageID: "u1", Feature: "quantum", Quantity: dec("1"), Unit: "gb", OccurredAt: sw}},
		{name: "feature that cannot be PAYG", given: paygFeatures(), at: now, err: ledger.ErrNotPaygEligible,
			when: ledger.RecordUsage{UsageID: "u1", Feature: "email_security", Quantity: dec("1"), Unit: "mailboxes", OccurredAt: sw}},
		{name: "unit other than the catalogue's", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: ledger.RecordUsage{UsageID: "u1", Feature: "file_security", Quantity: dec("1"), Unit: "hours", OccurredAt: sw}},
		{name: "zero quantity", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument, when: fileUsage("u1", "0", sw)},
		{name: "negative quantity", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument, when: fileUsage("u1", "-1", sw)},
		{name: "bad usage id", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument, when: fileUsage("u.1", "1", sw)},
		{name: "size on a feature that is not instance-sized", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: ledger.RecordUsage{UsageID: "u1", Feature: "file_security", Quantity: dec("1"), Unit: "gb", OccurredAt: sw, InstanceSize: "large"}},
		{name: "workload without a connector", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: workloadUsage("u1", "1", "large", "", sw)},
		{name: "workload without a size", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: workloadUsage("u1", "1", "", "aws", sw)},
		{name: "workload with an unknown size", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: workloadUsage("u1", "1", "huge", "aws", sw)},
		{name: "workload with an unknown connector", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: workloadUsage("u1", "1", "large", "oracle", sw)},
		{name: "missing occurred_at", given: paygFeatures(), at: now, err: ledger.ErrInvalidArgument,
			when: fileUsage("u1", "1", time.Time{})},
	})
}

func TestDecideRecordUsageTimeWindow(t *testing.T) {
	t.Parallel()
	late := now.Add(-ledger.DefaultUsageLateness)
	runDecide(t, []decideCase{
		{name: "exactly at the end of the 48h window", given: paygFeatures(), at: sw.Add(48 * time.Hour),
			when: fileUsage("u1", "1", sw), check: func(t *testing.T, a ledger.Account) { assert.Contains(t, a.Usage, "u1") },
			then: []events.Payload{func() events.Payload {
				p := recorded(t, fileUsage("u1", "1", sw), "payg-1", nil)
				p.RecordedAt = sw.Add(48 * time.Hour)
				return p
			}()}},
		{name: "1ns after the window", given: paygFeatures(), at: sw.Add(48*time.Hour + time.Nanosecond),
			when: fileUsage("u1", "1", sw), err: ledger.ErrUsageTooLate,
			data: map[string]string{"deadline": sw.Add(48 * time.Hour).Format(time.RFC3339Nano)}},
		{name: "within the clock-skew allowance in the future", given: paygFeatures(), at: now,
			when: fileUsage("u1", "1", now.Add(ledger.DefaultUsageClockSkew)),
			then: []events.Payload{recorded(t, fileUsage("u1", "1", now.Add(ledger.DefaultUsageClockSkew)), "payg-1", nil)}},
		{name: "beyond the clock-skew allowance", given: paygFeatures(), at: now,
			when: fileUsage("u1", "1", now.Add(ledger.DefaultUsageClockSkew+time.Nanosecond)), err: ledger.ErrInvalidArgument},
		{name: "the lateness check runs before the PAYG check", given: paygFeatures(), at: now,
			when: fileUsage("u1", "1", late.Add(-time.Hour)), err: ledger.ErrUsageTooLate},
	})
}

func TestRecordUsageWindowIsConfigurable(t *testing.T) {
	t.Parallel()
	r := ledger.NewRules(ledger.DefaultCatalogue())
	r.UsageLateness, r.UsageClockSkew = time.Hour, time.Second
	a := fold(paygFeatures()...)
	_, err := r.Decide(a, fileUsage("u1", "1", now.Add(-time.Hour-time.Nanosecond)), now)
	assert.ErrorIs(t, err, ledger.ErrUsageTooLate)
	_, err = r.Decide(a, fileUsage("u1", "1", now.Add(-time.Hour)), now)
	assert.NoError(t, err)
	_, err = r.Decide(a, fileUsage("u1", "1", now.Add(2*time.Second)), now)
	assert.ErrorIs(t, err, ledger.ErrInvalidArgument)
	// The default rules accept what the stricter ones refuse.
	_, err = rules.Decide(a, fileUsage("u1", "1", now.Add(-2*time.Hour)), now)
	assert.NoError(t, err)
}

func TestRecordUsageUnderTheContractInEffect(t *testing.T) {
	t.Parallel()
	later := sw.Add(6 * time.Hour)
	second := map[string]decimal.Decimal{"file_security": dec("0.01")}
	given := hist(paygFeatures(),
		events.PaygContractPurchased{ContractID: "payg-2", PurchasedAt: later, Rates: second},
		events.PaygContractActivated{ContractID: "payg-2", ActivatedAt: later})
	runDecide(t, []decideCase{
		{name: "before the second contract's activation", given: given, at: now, when: fileUsage("u1", "1", later.Add(-time.Second)),
			then: []events.Payload{recorded(t, fileUsage("u1", "1", later.Add(-time.Second)), "payg-1", nil)}},
		{name: "after the second contract's activation", given: given, at: now, when: fileUsage("u1", "1", later),
			then: []events.Payload{recorded(t, fileUsage("u1", "1", later), "payg-2", second)}},
		{
			// Not reachable through Decide (a switch needs an active contract), but the check holds.
			name:  "no contract active at occurred_at",
			given: hist(events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0}, switched("file_security", ledger.ModelCredits, ledger.ModelPayg, sw)),
			at:    now, when: fileUsage("u1", "1", sw), err: ledger.ErrNoActivePayg,
		},
	})
}

// TestRecordUsageRepeat: usage_id is unique per account; a repeat with the same content is the
// DuplicateUsage outcome (the writer replays the first reply), other content is refused.
func TestRecordUsageRepeat(t *testing.T) {
	t.Parallel()
	first := fileUsage("u1", "10", sw)
	a := fold(paygFeatures()...)
	ps, err := rules.Decide(a, first, now)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	a = ledger.Evolve(a, events.Event{
		Envelope: events.Envelope{AccountID: acct, Version: a.Version + 1, CommandID: "cmd-1"}, Position: 42, Data: ps[0],
	})

	cases := []struct {
		name  string
		when  ledger.RecordUsage
		at    time.Time
		dup   bool
		error *ledger.Error
	}{
		{name: "same content", when: first, at: now, dup: true},
		{name: "same quantity at another scale", when: fileUsage("u1", "10.000", sw), at: now, dup: true},
		{name: "same instant in another zone", when: fileUsage("u1", "10", sw.In(time.FixedZone("x", 3600))), at: now, dup: true},
		{name: "same content after the lateness window", when: first, at: now.Add(30 * 24 * time.Hour), dup: true},
		{name: "other quantity", when: fileUsage("u1", "11", sw), at: now, error: ledger.ErrIdempotencyReused},
		{name: "other time", when: fileUsage("u1", "10", sw.Add(time.Second)), at: now, error: ledger.ErrIdempotencyReused},
		{name: "other feature", when: workloadUsage("u1", "10", "large", "aws", sw), at: now, error: ledger.ErrIdempotencyReused},
		{name: "another usage id is new usage", when: fileUsage("u2", "10", sw), at: now},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rules.Decide(a, tc.when, tc.at)
			switch {
			case tc.dup:
				var dup *ledger.DuplicateUsage
				require.ErrorAs(t, err, &dup)
				assert.Equal(t, "cmd-1", dup.Record.CommandID)
				assert.Equal(t, a.Version, dup.Record.Version)
				assert.Equal(t, uint64(42), dup.Record.Position)
				assert.Empty(t, got)
			case tc.error != nil:
				assert.ErrorIs(t, err, tc.error)
				assert.Empty(t, got)
			default:
				require.NoError(t, err)
				assert.Len(t, got, 1)
			}
		})
	}
}

func TestBillingModelAt(t *testing.T) {
	t.Parallel()
	back := sw.Add(31 * 24 * time.Hour)
	a := fold(hist(paygFeatures(), switched("file_security", ledger.ModelPayg, ledger.ModelCredits, back))...)
	cases := []struct {
		at   time.Time
		want string
	}{
		{t0, ledger.ModelCredits},
		{sw.Add(-time.Nanosecond), ledger.ModelCredits},
		{sw, ledger.ModelPayg},
		{back.Add(-time.Nanosecond), ledger.ModelPayg},
		{back, ledger.ModelCredits},
		{back.AddDate(1, 0, 0), ledger.ModelCredits},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, a.BillingModelAt("file_security", tc.at), "at %s", tc.at)
	}
	assert.Equal(t, ledger.ModelCredits, a.BillingModelAt("container_security", back))
}

func TestPurchasePaygContractTierRates(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{
			name: "tier rates of an instance-sized feature",
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{
				asw + ":large": dec("0.02"), asw + ":data_center": dec("0.05"), asw: dec("0.04")}},
			then: []events.Payload{events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0, Rates: map[string]decimal.Decimal{
				asw + ":large": dec("0.02"), asw + ":data_center": dec("0.05"), asw: dec("0.04")}}},
		},
		{name: "a tier on a flat feature", err: ledger.ErrInvalidArgument,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{"file_security:large": dec("1")}}},
		{name: "an unknown tier", err: ledger.ErrInvalidArgument,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{asw + ":huge": dec("1")}}},
		{name: "a tier of an unknown feature", err: ledger.ErrUnknownFeature,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{"quantum:large": dec("1")}}},
		{name: "a zero tier rate", err: ledger.ErrInvalidArgument,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{asw + ":large": dec("0")}}},
	})
}

func TestCloneDoesNotShareUsage(t *testing.T) {
	t.Parallel()
	a := fold(paygFeatures()...)
	ps, err := rules.Decide(a, fileUsage("u1", "1", sw), now)
	require.NoError(t, err)
	a = apply(a, ps...)
	c := a.Clone()
	c = apply(c, hist(linked("sub-1", now))...)
	c.Usage["u2"] = ledger.UsageRecord{ID: "u2"}
	assert.NotContains(t, a.Usage, "u2")
	assert.Empty(t, a.Subscription.ID)
	assert.Equal(t, a.Usage["u1"], c.Usage["u1"])
}
