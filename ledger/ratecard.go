package ledger

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
)

// Instance sizes and cloud connectors of workload protection usage.
const (
	SizeMedium = "medium"
	SizeLarge  = "large"
	SizeXLarge = "xlarge"
	// TierDataCenter is the rate tier of every computer that is not under a cloud connector, or
	// that is part of a vCenter account.
	TierDataCenter = "data_center"

	ConnectorAWS   = "aws"
	ConnectorAzure = "azure"
	ConnectorGCP   = "gcp"
	ConnectorNone  = "none"
)

// InstanceSizes and CloudConnectors list the accepted values, in a fixed order.
var (
	InstanceSizes   = []string{SizeMedium, SizeLarge, SizeXLarge}
	CloudConnectors = []string{ConnectorAWS, ConnectorAzure, ConnectorGCP, ConnectorNone}
	// RateTiers are the tiers a tiered feature prices: every size, and the data-center rate.
	RateTiers = []string{SizeMedium, SizeLarge, SizeXLarge, TierDataCenter}
)

// RateKeySeparator joins a feature and a tier in a rate key ("feature:tier"), both in the rate
// card and in a contract's rates.
const RateKeySeparator = ":"

// FeatureRates prices one feature: a flat rate per unit, or one rate per tier.
type FeatureRates struct {
	Rate  decimal.Decimal            `json:"rate,omitempty"`
	Tiers map[string]decimal.Decimal `json:"tiers,omitempty"`
}

// Tiered reports whether the feature is priced by instance size and cloud connector.
func (f FeatureRates) Tiered() bool { return len(f.Tiers) > 0 }

// RateCard is the default price list of pay-as-you-go usage: data (ratecard.json), not code.
type RateCard struct {
	Version  string
	Currency string
	features map[string]FeatureRates
}

//go:embed ratecard.json
var defaultRateCard []byte

var parsedDefaultCard = sync.OnceValues(func() (*RateCard, error) { return ParseRateCard(defaultRateCard) })

// DefaultRateCard is the rate card shipped with this build.
func DefaultRateCard() *RateCard {
	rc, err := parsedDefaultCard()
	if err != nil {
		// The embedded file is part of the build and a test parses it; this cannot happen at run time.
		panic(err)
	}
	return rc
}

// ParseRateCard reads a rate card document. Every rate must be positive; a tiered feature must
// price every tier, and its data-center rate must be the highest (the domain rule).
func ParseRateCard(data []byte) (*RateCard, error) {
	var doc struct {
		Version     string                  `json:"version"`
		Currency    string                  `json:"currency"`
		Description string                  `json:"description"`
		Features    map[string]FeatureRates `json:"features"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse rate card: %w", err)
	}
	if doc.Version == "" {
		return nil, fmt.Errorf("rate card: version is required")
	}
	if len(doc.Currency) != 3 || strings.ToUpper(doc.Currency) != doc.Currency {
		return nil, fmt.Errorf("rate card: currency must be an ISO 4217 code, got %q", doc.Currency)
	}
	for id, f := range doc.Features {
		if err := checkFeatureRates(id, f); err != nil {
			return nil, err
		}
	}
	return &RateCard{Version: doc.Version, Currency: doc.Currency, features: doc.Features}, nil
}

func checkFeatureRates(id string, f FeatureRates) error {
	if !ValidID(id) {
		return fmt.Errorf("rate card: invalid feature id %q", id)
	}
	if !f.Tiered() {
		if !f.Rate.IsPositive() {
			return fmt.Errorf("rate card: %s needs a positive rate or tiers", id)
		}
		return nil
	}
	if !f.Rate.IsZero() {
		return fmt.Errorf("rate card: %s has both a flat rate and tiers", id)
	}
	if len(f.Tiers) != len(RateTiers) {
		return fmt.Errorf("rate card: %s must price exactly the tiers %v", id, RateTiers)
	}
	dc := f.Tiers[TierDataCenter]
	for _, t := range RateTiers {
		r, ok := f.Tiers[t]
		if !ok || !r.IsPositive() {
			return fmt.Errorf("rate card: %s tier %s needs a positive rate", id, t)
		}
		if r.GreaterThan(dc) {
			return fmt.Errorf("rate card: %s tier %s (%s) is above the data-center rate (%s)", id, t, r, dc)
		}
	}
	return nil
}

// CheckTierOrder refuses contract rates under which a computer outside a cloud connector would
// pay less than a sized one under a connector: the data-center rate is the highest, whichever of
// the contract (its tier rate, else its single rate for the feature) or the card sets each tier.
func (rc *RateCard) CheckTierOrder(contract map[string]decimal.Decimal, feature string) error {
	card := rc.features[feature]
	effective := func(tier string) (decimal.Decimal, bool) {
		if r, ok := contract[RateKey(feature, tier)]; ok {
			return r, true
		}
		if r, ok := contract[feature]; ok {
			return r, true
		}
		r, ok := card.Tiers[tier]
		return r, ok
	}
	dcKey := RateKey(feature, TierDataCenter)
	dc, ok := effective(TierDataCenter)
	if !ok {
		return nil // nothing prices a data-center computer: such usage is refused when recorded
	}
	for _, t := range RateTiers {
		if r, ok := effective(t); ok && t != TierDataCenter && r.GreaterThan(dc) {
			return Reject(CodeInvalidArgument, "rates: %s (%s) would be above the data-center rate %s (%s); a computer outside a cloud connector pays the highest rate, so set %s at least as high",
				RateKey(feature, t), r, dcKey, dc, dcKey)
		}
	}
	return nil
}

// Feature returns the card's prices of a feature.
func (rc *RateCard) Feature(id string) (FeatureRates, bool) {
	f, ok := rc.features[id]
	return f, ok
}

// Features lists the priced feature ids, sorted.
func (rc *RateCard) Features() []string {
	out := make([]string, 0, len(rc.features))
	for id := range rc.features {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// RateKey names the rate of a feature, or of one tier of a tiered feature.
func RateKey(feature, tier string) string {
	if tier == "" {
		return feature
	}
	return feature + RateKeySeparator + tier
}

// SplitRateKey splits "feature:tier" (tier empty for a plain feature id).
func SplitRateKey(key string) (feature, tier string) {
	feature, tier, _ = strings.Cut(key, RateKeySeparator)
	return feature, tier
}

// AppliedRate is the rate one usage record is priced at, and why.
type AppliedRate struct {
	Key    string
	Rate   decimal.Decimal
	Source string
	Reason string
}

// Resolve finds the rate of one usage record of a feature. A tiered feature (the catalogue's
// instance_sized, workload protection) is priced by tier: the instance size when the computer is
// under a cloud connector and not part of a vCenter account, the data-center tier otherwise,
// whatever its size (a vCenter computer pays it even under a connector). A contract rate wins
// over the card: first the contract's "feature:tier" rate, then its flat "feature" rate (one price
// for every tier), then the card. It fails with invalid_argument when neither prices the usage.
func (rc *RateCard) Resolve(contract map[string]decimal.Decimal, feature string, tiered bool, size, connector string, vcenter bool) (AppliedRate, error) {
	card, onCard := rc.features[feature]
	if !tiered {
		if r, ok := contract[feature]; ok {
			return AppliedRate{Key: feature, Rate: r, Source: events.RateFromContract,
				Reason: fmt.Sprintf("the contract's rate for %s", feature)}, nil
		}
		if onCard && !card.Tiered() {
			return AppliedRate{Key: feature, Rate: card.Rate, Source: events.RateFromCard,
				Reason: fmt.Sprintf("the contract has no rate for %s: rate card %s applies", feature, rc.Version)}, nil
		}
		return AppliedRate{}, noRate(feature, feature)
	}
	tier, why := size, fmt.Sprintf("a %s computer under the %s cloud connector pays the %s rate", size, connector, size)
	switch {
	case vcenter:
		tier, why = TierDataCenter, fmt.Sprintf("a computer that is part of a vCenter account pays the data-center rate whatever its size (%s) and cloud connector (%s)", size, connector)
	case connector == ConnectorNone:
		tier, why = TierDataCenter, fmt.Sprintf("a computer outside a cloud connector pays the data-center rate whatever its size (%s)", size)
	}
	key := RateKey(feature, tier)
	if r, ok := contract[key]; ok {
		return AppliedRate{Key: key, Rate: r, Source: events.RateFromContract, Reason: why + "; the contract's rate for " + key}, nil
	}
	if r, ok := contract[feature]; ok {
		return AppliedRate{Key: feature, Rate: r, Source: events.RateFromContract,
			Reason: why + "; the contract's single rate for " + feature + " covers every tier"}, nil
	}
	if r, ok := card.Tiers[tier]; ok {
		return AppliedRate{Key: key, Rate: r, Source: events.RateFromCard,
			Reason: fmt.Sprintf("%s; the contract has no rate for %s: rate card %s applies", why, key, rc.Version)}, nil
	}
	return AppliedRate{}, noRate(feature, key)
}

func noRate(feature, key string) *Error {
	e := Reject(CodeInvalidArgument, "no rate for %s: neither the PAYG contract nor the rate card prices it", key)
	e.Data = map[string]string{"feature": feature, "rate_key": key}
	return e
}

// minorUnitDigits holds the ISO 4217 minor units of the currencies a rate card may use; any
// other currency is shown with two decimals.
var minorUnitDigits = map[string]int32{"USD": 2, "EUR": 2, "GBP": 2, "AUD": 2, "CAD": 2, "CHF": 2, "JPY": 0, "KRW": 0}

// MinorUnitDigits is how many decimals a currency's minor unit has (2 for USD: cents).
func MinorUnitDigits(currency string) int32 {
	if d, ok := minorUnitDigits[currency]; ok {
		return d
	}
	return 2
}

// RoundMoney rounds an amount half-even (banker's rounding) to the currency's minor unit: the
// displayed figure. Stored amounts are never rounded.
func RoundMoney(amount decimal.Decimal, currency string) decimal.Decimal {
	return amount.RoundBank(MinorUnitDigits(currency))
}
