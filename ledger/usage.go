package ledger

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
)

// Usage defaults; Rules fields override them.
const (
	// DefaultUsageLateness is how long after it happened usage may still be recorded.
	DefaultUsageLateness = 48 * time.Hour
	// DefaultUsageClockSkew is how far in the future (by the ledger's clock) occurred_at may be.
	DefaultUsageClockSkew = 5 * time.Minute
)

// RecordUsage meters pay-as-you-go usage of a feature. UsageID is unique per account: a repeat
// with the same content is answered with the first reply (see DuplicateUsage), a repeat with
// other content is idempotency_key_reused.
type RecordUsage struct {
	UsageID    string
	Feature    string
	Quantity   decimal.Decimal
	Unit       string
	OccurredAt time.Time
	// InstanceSize and CloudConnector describe the computer of an instance-sized feature
	// (workload protection); they must be empty for every other feature.
	InstanceSize   string
	CloudConnector string
	// VCenter says the computer is part of a vCenter account: it pays the data-center rate
	// whatever its size and connector. Instance-sized features only.
	VCenter bool
}

// Name is the command's wire name.
func (RecordUsage) Name() string { return "record_usage" }

// UsageRecord is one recorded usage of the account, as the UsageRecorded event left it, plus
// where it was stored (the command that recorded it, its version and position).
type UsageRecord struct {
	ID             string
	Feature        string
	Quantity       decimal.Decimal
	Unit           string
	OccurredAt     time.Time
	InstanceSize   string
	CloudConnector string
	VCenter        bool
	ContractID     string
	Rate           decimal.Decimal
	Amount         decimal.Decimal
	Currency       string
	CommandID      string
	Version        uint64
	Position       uint64
}

// sameContent reports whether a repeated command describes the recorded usage.
func (u UsageRecord) sameContent(c RecordUsage) bool {
	return u.Feature == c.Feature && u.Unit == c.Unit && u.Quantity.Equal(c.Quantity) &&
		u.OccurredAt.Equal(c.OccurredAt) && u.InstanceSize == c.InstanceSize && u.CloudConnector == c.CloudConnector &&
		u.VCenter == c.VCenter
}

// DuplicateUsage is the outcome of a record_usage whose usage_id the account already recorded
// with the same content. It is not a rejection: the command changes nothing and its reply is the
// reply of the command that recorded the usage (Record.CommandID), which the writer replays.
type DuplicateUsage struct {
	AccountID string
	Record    UsageRecord
}

func (d *DuplicateUsage) Error() string {
	return fmt.Sprintf("usage %s of account %s was already recorded (version %d)", d.Record.ID, d.AccountID, d.Record.Version)
}

func (r Rules) rateCard() *RateCard {
	if r.RateCard != nil {
		return r.RateCard
	}
	return DefaultRateCard()
}

func (r Rules) usageLateness() time.Duration {
	if r.UsageLateness > 0 {
		return r.UsageLateness
	}
	return DefaultUsageLateness
}

func (r Rules) usageClockSkew() time.Duration {
	if r.UsageClockSkew > 0 {
		return r.UsageClockSkew
	}
	return DefaultUsageClockSkew
}

func (r Rules) decideUsage(a Account, c RecordUsage, now time.Time) ([]events.Payload, error) {
	if !ValidID(c.UsageID) {
		return nil, Reject(CodeInvalidArgument, "usage_id must be 1-64 characters of A-Za-z0-9_-")
	}
	c.OccurredAt = c.OccurredAt.UTC()
	if prev, ok := a.Usage[c.UsageID]; ok {
		if prev.sameContent(c) {
			return nil, &DuplicateUsage{AccountID: a.ID, Record: prev}
		}
		return nil, Reject(CodeIdempotencyKeyReused, "usage_id %s was already recorded with different content", c.UsageID)
	}
	f, err := r.usageFeature(c)
	if err != nil {
		return nil, err
	}
	if err := r.checkUsageTime(c.OccurredAt, now); err != nil {
		return nil, err
	}
	if model := a.BillingModelAt(f.ID, c.OccurredAt); model != ModelPayg {
		return nil, Reject(CodeFeatureNotOnPayg, "feature %s was billed by %s at %s, not pay-as-you-go",
			f.ID, model, c.OccurredAt.Format(time.RFC3339))
	}
	k, ok := a.PaygContractAt(c.OccurredAt)
	if !ok {
		return nil, Reject(CodeNoActivePaygContract, "no PAYG contract was active at %s", c.OccurredAt.Format(time.RFC3339))
	}
	card := r.rateCard()
	rate, err := card.Resolve(k.Rates, f.ID, f.InstanceSized, c.InstanceSize, c.CloudConnector, c.VCenter)
	if err != nil {
		return nil, err
	}
	p := events.UsageRecorded{
		UsageID: c.UsageID, Feature: f.ID, Quantity: c.Quantity, Unit: c.Unit, OccurredAt: c.OccurredAt,
		RecordedAt: now, InstanceSize: c.InstanceSize, CloudConnector: c.CloudConnector, VCenter: c.VCenter, ContractID: k.ID,
		RateKey: rate.Key, Rate: rate.Rate, RateSource: rate.Source, RateReason: rate.Reason,
		Amount: c.Quantity.Mul(rate.Rate), Currency: card.Currency,
	}
	if rate.Source == events.RateFromCard {
		p.RateCard = card.Version
	}
	return []events.Payload{p}, nil
}

// usageFeature checks what a usage record says about its feature: known, PAYG-eligible, a
// positive quantity in the catalogue's unit, and the computer's size and connector exactly when
// the feature is instance-sized (vcenter only then).
func (r Rules) usageFeature(c RecordUsage) (Feature, error) {
	f, err := r.feature(c.Feature)
	if err != nil {
		return Feature{}, err
	}
	if !f.PaygEligible {
		return Feature{}, Reject(CodeFeatureNotPaygEligible, "feature %s cannot be billed pay-as-you-go", c.Feature)
	}
	if err := positive("quantity", c.Quantity); err != nil {
		return Feature{}, err
	}
	if c.Unit != f.Unit {
		return Feature{}, Reject(CodeInvalidArgument, "unit must be %q for feature %s, got %q", f.Unit, f.ID, c.Unit)
	}
	if !f.InstanceSized {
		if c.InstanceSize != "" || c.CloudConnector != "" || c.VCenter {
			return Feature{}, Reject(CodeInvalidArgument, "instance_size, cloud_connector and vcenter apply only to instance-sized features such as workload protection")
		}
		return f, nil
	}
	if !oneOf(c.InstanceSize, InstanceSizes) {
		return Feature{}, Reject(CodeInvalidArgument, "instance_size must be one of %v for feature %s", InstanceSizes, f.ID)
	}
	if !oneOf(c.CloudConnector, CloudConnectors) {
		return Feature{}, Reject(CodeInvalidArgument, "cloud_connector must be one of %v for feature %s", CloudConnectors, f.ID)
	}
	return f, nil
}

// checkUsageTime accepts usage up to the lateness window after it happened, and refuses
// occurred_at beyond the clock-skew allowance in the future.
func (r Rules) checkUsageTime(occurred, now time.Time) error {
	if occurred.IsZero() {
		return Reject(CodeInvalidArgument, "occurred_at is required")
	}
	if limit := now.Add(r.usageClockSkew()); occurred.After(limit) {
		e := Reject(CodeInvalidArgument, "occurred_at %s is in the future (the ledger's clock reads %s, allowance %s)",
			occurred.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), r.usageClockSkew())
		e.Data = map[string]string{"occurred_at": occurred.Format(time.RFC3339Nano), "now": now.Format(time.RFC3339Nano)}
		return e
	}
	if deadline := occurred.Add(r.usageLateness()); now.After(deadline) {
		e := Reject(CodeUsageTooLate, "usage that occurred at %s had to be recorded by %s (lateness window %s)",
			occurred.Format(time.RFC3339Nano), deadline.Format(time.RFC3339Nano), r.usageLateness())
		e.Data = map[string]string{"occurred_at": occurred.Format(time.RFC3339Nano), "deadline": deadline.Format(time.RFC3339Nano)}
		return e
	}
	return nil
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// BillingModelAt is the feature's billing model at instant t, from its switch history: the model
// of the last switch at or before t (a switch takes effect at its own instant), credits before any.
func (a Account) BillingModelAt(feature string, t time.Time) string {
	model := ModelCredits
	for _, s := range a.Features[feature].History {
		if s.At.After(t) {
			break
		}
		model = s.To
	}
	return model
}

// PaygContractAt is the PAYG contract in effect at instant t: of the contracts activated at or
// before t, the one activated last (contracts are never deactivated).
func (a Account) PaygContractAt(t time.Time) (PaygContract, bool) {
	var best PaygContract
	found := false
	for _, id := range a.ContractOrder {
		k := a.Contracts[id]
		if !k.Active || k.ActivatedAt.After(t) {
			continue
		}
		if !found || !k.ActivatedAt.Before(best.ActivatedAt) {
			best, found = k, true
		}
	}
	return best, found
}

func (a Account) evolveUsage(e events.Event, p events.UsageRecorded) Account {
	if a.Usage == nil {
		a.Usage = map[string]UsageRecord{}
	}
	a.Usage[p.UsageID] = UsageRecord{
		ID: p.UsageID, Feature: p.Feature, Quantity: p.Quantity, Unit: p.Unit, OccurredAt: p.OccurredAt,
		InstanceSize: p.InstanceSize, CloudConnector: p.CloudConnector, VCenter: p.VCenter, ContractID: p.ContractID,
		Rate: p.Rate, Amount: p.Amount, Currency: p.Currency,
		CommandID: e.CommandID, Version: e.Version, Position: e.Position,
	}
	return a
}
