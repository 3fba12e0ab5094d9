package ledger_test

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

const asw = "advanced_server_workload_protection"

func TestDefaultRateCardPricesEveryPaygFeature(t *testing.T) {
	t.Parallel()
	card := ledger.DefaultRateCard()
	assert.Equal(t, "USD", card.Currency)
	assert.NotEmpty(t, card.Version)
	cat := ledger.DefaultCatalogue()
	var eligible []string
	for _, f := range cat.Features() {
		if !f.PaygEligible {
			continue
		}
		eligible = append(eligible, f.ID)
		fr, ok := card.Feature(f.ID)
		require.True(t, ok, "the default card prices %s", f.ID)
		assert.Equal(t, f.InstanceSized, fr.Tiered(), "%s is tiered exactly when the catalogue says it is instance-sized", f.ID)
	}
	assert.ElementsMatch(t, eligible, card.Features(), "the card prices nothing outside the PAYG-eligible catalogue")
	fr, _ := card.Feature(asw)
	for _, tier := range ledger.RateTiers {
		assert.True(t, fr.Tiers[tier].LessThanOrEqual(fr.Tiers[ledger.TierDataCenter]), "data-center is the highest rate (tier %s)", tier)
	}
}

// TestResolveWorkloadEverySizeAndConnector is the rate rule: a computer under a cloud connector
// pays its size's rate, any other computer the data-center rate whatever its size.
func TestResolveWorkloadEverySizeAndConnector(t *testing.T) {
	t.Parallel()
	card := ledger.DefaultRateCard()
	bySize := map[string]string{ledger.SizeMedium: "0.012", ledger.SizeLarge: "0.024", ledger.SizeXLarge: "0.048"}
	for _, size := range ledger.InstanceSizes {
		for _, conn := range ledger.CloudConnectors {
			t.Run(size+"/"+conn, func(t *testing.T) {
				t.Parallel()
				got, err := card.Resolve(nil, asw, true, size, conn, false)
				require.NoError(t, err)
				wantTier, wantRate := size, bySize[size]
				if conn == ledger.ConnectorNone {
					wantTier, wantRate = ledger.TierDataCenter, "0.06"
				}
				assert.Equal(t, ledger.RateKey(asw, wantTier), got.Key)
				assertDecimal(t, wantRate, got.Rate, "rate")
				assert.Equal(t, events.RateFromCard, got.Source)
				assert.Contains(t, got.Reason, card.Version, "the reason names the card version")
				if conn == ledger.ConnectorNone {
					assert.Contains(t, got.Reason, "data-center rate whatever its size ("+size+")")
				} else {
					assert.Contains(t, got.Reason, "under the "+conn+" cloud connector")
				}
			})
		}
	}
}

// TestResolveVCenterPaysTheDataCenterRate is the vCenter rule (issue 16): a computer that is
// part of a vCenter account pays the data-center rate whatever its size, even when a cloud
// connector is named, and the reason says so.
func TestResolveVCenterPaysTheDataCenterRate(t *testing.T) {
	t.Parallel()
	card := ledger.DefaultRateCard()
	for _, size := range ledger.InstanceSizes {
		for _, conn := range ledger.CloudConnectors {
			t.Run(size+"/"+conn, func(t *testing.T) {
				t.Parallel()
				got, err := card.Resolve(nil, asw, true, size, conn, true)
				require.NoError(t, err)
				assert.Equal(t, ledger.RateKey(asw, ledger.TierDataCenter), got.Key)
				assertDecimal(t, "0.06", got.Rate, "rate")
				assert.Equal(t, events.RateFromCard, got.Source)
				assert.Contains(t, got.Reason, "part of a vCenter account pays the data-center rate whatever its size ("+size+") and cloud connector ("+conn+")")
			})
		}
	}
}

func TestResolveContractRatesAndFallbacks(t *testing.T) {
	t.Parallel()
	card := ledger.DefaultRateCard()
	contract := map[string]decimal.Decimal{
		ledger.RateKey(asw, ledger.SizeLarge):      dec("0.02"),
		ledger.RateKey(asw, ledger.TierDataCenter): dec("0.05"),
		"container_security":                       dec("0.004"),
	}
	flat := map[string]decimal.Decimal{asw: dec("0.03")}
	cases := []struct {
		name            string
		contract        map[string]decimal.Decimal
		feature         string
		tiered          bool
		size, connector string
		vcenter         bool
		key, rate, src  string
		err             bool
	}{
		{name: "contract tier rate under a connector", contract: contract, feature: asw, tiered: true, size: "large", connector: "aws",
			key: asw + ":large", rate: "0.02", src: events.RateFromContract},
		{name: "contract data-center rate outside a connector", contract: contract, feature: asw, tiered: true, size: "large", connector: "none",
			key: asw + ":data_center", rate: "0.05", src: events.RateFromContract},
		{name: "tier missing from the contract falls back to the card", contract: contract, feature: asw, tiered: true, size: "medium", connector: "gcp",
			key: asw + ":medium", rate: "0.012", src: events.RateFromCard},
		{name: "a flat contract rate covers every tier", contract: flat, feature: asw, tiered: true, size: "xlarge", connector: "azure",
			key: asw, rate: "0.03", src: events.RateFromContract},
		{name: "a flat contract rate covers the data-center tier", contract: flat, feature: asw, tiered: true, size: "medium", connector: "none",
			key: asw, rate: "0.03", src: events.RateFromContract},
		{name: "contract data-center rate for a vCenter computer under a connector", contract: contract, feature: asw, tiered: true, size: "large", connector: "aws", vcenter: true,
			key: asw + ":data_center", rate: "0.05", src: events.RateFromContract},
		{name: "card data-center rate for a vCenter computer under a connector", feature: asw, tiered: true, size: "medium", connector: "azure", vcenter: true,
			key: asw + ":data_center", rate: "0.06", src: events.RateFromCard},
		{name: "a flat contract rate covers a vCenter computer", contract: flat, feature: asw, tiered: true, size: "large", connector: "gcp", vcenter: true,
			key: asw, rate: "0.03", src: events.RateFromContract},
		{name: "flat feature from the contract", contract: contract, feature: "container_security",
			key: "container_security", rate: "0.004", src: events.RateFromContract},
		{name: "flat feature from the card", contract: contract, feature: "file_security",
			key: "file_security", rate: "0.03", src: events.RateFromCard},
		{name: "flat feature with no contract at all", feature: "cloud_account_assessment",
			key: "cloud_account_assessment", rate: "0.25", src: events.RateFromCard},
		{name: "missing rate: feature on neither", contract: contract, feature: "quantum_scanner", err: true, key: "quantum_scanner"},
		{name: "missing rate: tiered feature on neither", contract: contract, feature: "gpu_protection", tiered: true, size: "large", connector: "aws",
			err: true, key: "gpu_protection:large"},
		{name: "missing rate: card prices it flat but it is tiered", feature: "file_security", tiered: true, size: "large", connector: "aws",
			err: true, key: "file_security:large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := card.Resolve(tc.contract, tc.feature, tc.tiered, tc.size, tc.connector, tc.vcenter)
			if tc.err {
				assert.ErrorIs(t, err, ledger.ErrInvalidArgument)
				var de *ledger.Error
				require.ErrorAs(t, err, &de)
				assert.Equal(t, tc.key, de.Data["rate_key"])
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.key, got.Key)
			assertDecimal(t, tc.rate, got.Rate, "rate")
			assert.Equal(t, tc.src, got.Source)
			assert.NotEmpty(t, got.Reason)
		})
	}
}

func TestParseRateCardRejectsBadCards(t *testing.T) {
	t.Parallel()
	tiers := func(m, l, x, dc string) string {
		return fmt.Sprintf(`{"tiers": {"medium": %q, "large": %q, "xlarge": %q, "data_center": %q}}`, m, l, x, dc)
	}
	doc := func(currency, features string) string {
		return fmt.Sprintf(`{"version": "v1", "currency": %q, "features": {%s}}`, currency, features)
	}
	cases := []struct{ name, doc string }{
		{"not json", `{`},
		{"unknown field", `{"version": "v1", "currency": "USD", "features": {}, "extra": 1}`},
		{"no version", `{"currency": "USD", "features": {}}`},
		{"bad currency", doc("usd", `"file_security": {"rate": "1"}`)},
		{"zero flat rate", doc("USD", `"file_security": {"rate": "0"}`)},
		{"negative flat rate", doc("USD", `"file_security": {"rate": "-1"}`)},
		{"bad feature id", doc("USD", `"file.security": {"rate": "1"}`)},
		{"flat and tiers", doc("USD", `"x": {"rate": "1", "tiers": {"medium": "1", "large": "1", "xlarge": "1", "data_center": "1"}}`)},
		{"a tier missing", doc("USD", `"x": {"tiers": {"medium": "1", "large": "1", "xlarge": "1"}}`)},
		{"an unknown tier", doc("USD", `"x": {"tiers": {"medium": "1", "large": "1", "xlarge": "1", "huge": "1"}}`)},
		{"data-center not the highest", doc("USD", `"x": `+tiers("1", "2", "4", "3"))},
		{"zero tier", doc("USD", `"x": `+tiers("0", "2", "3", "4"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ledger.ParseRateCard([]byte(tc.doc))
			assert.Error(t, err)
		})
	}
	card, err := ledger.ParseRateCard([]byte(doc("EUR", `"x": `+tiers("1", "2", "3", "3"))))
	require.NoError(t, err)
	assert.Equal(t, "EUR", card.Currency)
}

func TestRoundMoneyHalfEvenToMinorUnit(t *testing.T) {
	t.Parallel()
	cases := []struct{ amount, currency, want string }{
		{"0.125", "USD", "0.12"},
		{"0.135", "USD", "0.14"},
		{"0.1250001", "USD", "0.13"},
		{"2.5", "JPY", "2"},
		{"3.5", "JPY", "4"},
		{"-0.125", "USD", "-0.12"},
		{"1.005", "XYZ", "1"},
		{"12.3456", "EUR", "12.35"},
	}
	for _, tc := range cases {
		got := ledger.RoundMoney(dec(tc.amount), tc.currency)
		assertDecimal(t, tc.want, got, tc.amount+" "+tc.currency)
	}
}
