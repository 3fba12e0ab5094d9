package ledger

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
)

// Business constants from the domain rules.
const (
	// AWSActivationWindow is how long after purchase an AWS Marketplace license can be activated.
	AWSActivationWindow = 4 * time.Hour
	// SwitchInterval is how long a feature stays on a billing model before it may switch again.
	SwitchInterval = 30 * 24 * time.Hour
	// RenewalTermMonths is the length of every renewed term.
	RenewalTermMonths = 12
	// DefaultTermMonths is a new license's term unless the purchase says otherwise.
	DefaultTermMonths = 12
	// MaxTermMonths bounds a purchase's term.
	MaxTermMonths = 120
	// MaxEventsPerCommand bounds the events one decision may produce (one atomic append).
	MaxEventsPerCommand = 1000
	// maxCatchUpTerms bounds the renewals one decision may emit for a long-past contract start.
	maxCatchUpTerms = 1200
)

// Contract starts outside these bounds are typos, not contracts; the bounds also keep the
// catch-up of a past start to a few dozen renewals and every expiry encodable.
var (
	MinContractStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxContractStart = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Azure "number of users" bounds for one license (one user is one credit).
var (
	AzureMinCredits = decimal.NewFromInt(3)
	AzureMaxCredits = decimal.NewFromInt(1_000_000)
)

// Rules decides commands against the feature catalogue.
type Rules struct {
	Catalogue Catalogue
	// RateCard prices the PAYG usage a contract has no rate for (nil: DefaultRateCard).
	RateCard *RateCard
	// UsageLateness is how long after it happened usage may be recorded (0: DefaultUsageLateness).
	UsageLateness time.Duration
	// UsageClockSkew is how far in the future occurred_at may be (0: DefaultUsageClockSkew).
	UsageClockSkew time.Duration
}

// NewRules returns the rules over a catalogue.
func NewRules(c Catalogue) Rules { return Rules{Catalogue: c} }

// Decide returns the events a command produces on an account at time now, or a *Error. Before
// the command it brings the account's licenses up to date with now (renewals and expiries), so a
// decision never uses credits that have already lapsed; those time events are part of the result.
// It does not modify a.
func (r Rules) Decide(a Account, cmd Command, now time.Time) ([]events.Payload, error) {
	now = now.UTC()
	due := DueEvents(a, now)
	if len(due) > 0 {
		a = a.Clone()
		for _, p := range due {
			a = Evolve(a, events.Event{Envelope: events.Envelope{Version: a.Version + 1}, Data: p})
		}
	}
	out, err := r.decide(a, cmd, now)
	if err != nil {
		return nil, err
	}
	return append(due, out...), nil
}

func (r Rules) decide(a Account, cmd Command, now time.Time) ([]events.Payload, error) {
	switch c := cmd.(type) {
	case PurchaseLicense:
		return decidePurchase(a, c, now)
	case ActivateLicense:
		return decideActivate(a, c, now)
	case UpgradeContract:
		return decideUpgrade(a, c, now)
	case AllocateCredits:
		return r.decideAllocate(a, c)
	case ReleaseCredits:
		return r.decideRelease(a, c)
	case SetAutoRenew:
		return decideAutoRenew(a, c)
	case PurchasePaygContract:
		return r.decidePaygPurchase(a, c, now)
	case ActivatePaygContract:
		return decidePaygActivate(a, c, now)
	case SwitchBillingModel:
		return r.decideSwitch(a, c, now)
	case RecordUsage:
		return r.decideUsage(a, c, now)
	case LinkSubscription:
		return decideLink(a, c, now)
	case UnlinkSubscription:
		return decideUnlink(a, c, now)
	case TransferSubscription:
		return decideTransfer(a, c, now)
	case AdvanceTime:
		return nil, nil
	default:
		return nil, Reject(CodeInvalidArgument, "unknown command %T", cmd)
	}
}

// DueEvents lists the renewals and expiries that are due on the account at now, in license order,
// then the account's own expiry when its subscription grace period has ended.
func DueEvents(a Account, now time.Time) []events.Payload {
	var out []events.Payload
	for _, id := range a.LicenseOrder {
		l := a.Licenses[id]
		if l.ParentID == "" && l.Status != StatusExpired && !l.ExpiresAt.After(now) {
			out = append(out, termEvents(l, now)...)
		}
	}
	return append(out, subscriptionDue(a, now)...)
}

// NextDue is the earliest moment at which DueEvents has something to do on the account; ok is
// false when nothing will ever fall due without a command. It lets the expiry processor wait
// for that moment instead of asking every account every second.
func NextDue(a Account) (at time.Time, ok bool) {
	for _, l := range a.Licenses {
		if l.ParentID == "" && l.Status != StatusExpired && (!ok || l.ExpiresAt.Before(at)) {
			at, ok = l.ExpiresAt, true
		}
	}
	if a.Subscription.ID == "" && !a.GraceUntil.IsZero() && a.ExpiredAt.IsZero() && (!ok || a.GraceUntil.Before(at)) {
		at, ok = a.GraceUntil, true
	}
	return at, ok
}

// addMonths moves t by n calendar months, keeping the day of the month but clamping it to the
// last day of a shorter month: a one-month term bought on 31 January ends on 28 (or 29)
// February, not on 3 March, and a year bought on 29 February ends on 28 February. (time.AddDate
// normalises the overflow into the next month, which counted credits for up to three days past
// the contract.) Events already stored keep the dates they were decided with.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	first := time.Date(y, m+time.Month(n), 1, hh, mm, ss, t.Nanosecond(), t.Location())
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, hh, mm, ss, t.Nanosecond(), t.Location())
}

// termEvents renews a lapsed license term by term until it runs past now, or expires it.
func termEvents(l License, now time.Time) []events.Payload {
	if !l.AutoRenew {
		return []events.Payload{events.LicenseExpired{LicenseID: l.ID, ExpiredAt: l.ExpiresAt}}
	}
	var out []events.Payload
	exp := l.ExpiresAt
	for i := 0; i < maxCatchUpTerms && !exp.After(now); i++ {
		next := addMonths(exp, RenewalTermMonths)
		out = append(out, events.LicenseRenewed{LicenseID: l.ID, PreviousExpiresAt: exp, ExpiresAt: next})
		exp = next
	}
	return out
}

func positive(field string, d decimal.Decimal) error {
	if !d.IsPositive() {
		return Reject(CodeInvalidArgument, "%s must be greater than zero", field)
	}
	return nil
}

func decidePurchase(a Account, c PurchaseLicense, now time.Time) ([]events.Payload, error) {
	if !ValidID(c.LicenseID) {
		return nil, Reject(CodeInvalidArgument, "license_id must be 1-64 characters of A-Za-z0-9_-")
	}
	if _, exists := a.Licenses[c.LicenseID]; exists {
		return nil, Reject(CodeAlreadyExists, "license %s already exists", c.LicenseID)
	}
	if err := positive("credits", c.Credits); err != nil {
		return nil, err
	}
	switch c.Source {
	case SourceSales, SourceAWS:
	case SourceAzure:
		if !c.Credits.IsInteger() || c.Credits.LessThan(AzureMinCredits) || c.Credits.GreaterThan(AzureMaxCredits) {
			return nil, Reject(CodeInvalidArgument, "azure_marketplace credits must be a whole number from 3 to 1000000")
		}
	default:
		return nil, Reject(CodeInvalidArgument, "source must be sales, aws_marketplace or azure_marketplace")
	}
	if c.Source == SourceSales && a.Subscription.ID != "" {
		e := Reject(CodeSubscriptionConflict, "account pays through marketplace subscription %s; an account pays through a marketplace subscription or annual licenses, never both", a.Subscription.ID)
		e.Data = map[string]string{"subscription_id": a.Subscription.ID}
		return nil, e
	}
	term := c.TermMonths
	if term == 0 {
		term = DefaultTermMonths
	}
	if term < 1 || term > MaxTermMonths {
		return nil, Reject(CodeInvalidArgument, "term_months must be from 1 to %d", MaxTermMonths)
	}
	start := c.ContractStart.UTC()
	if c.ContractStart.IsZero() {
		start = now
	}
	if start.Before(MinContractStart) || !start.Before(MaxContractStart) {
		return nil, Reject(CodeInvalidArgument, "contract_start must be in the years %d to %d", MinContractStart.Year(), MaxContractStart.Year()-1)
	}
	p := events.LicensePurchased{
		LicenseID: c.LicenseID, Source: c.Source, Credits: c.Credits, TermMonths: term,
		AutoRenew: c.AutoRenew, ContractStart: start, PurchasedAt: now,
		ExpiresAt: addMonths(start, term),
	}
	out := []events.Payload{p}
	if !p.ExpiresAt.After(now) {
		// A contract that started in the past is brought up to date in the same append.
		out = append(out, termEvents(License{ID: p.LicenseID, AutoRenew: p.AutoRenew, ExpiresAt: p.ExpiresAt}, now)...)
	}
	return out, nil
}

func decideActivate(a Account, c ActivateLicense, now time.Time) ([]events.Payload, error) {
	l, ok := a.Licenses[c.LicenseID]
	if !ok {
		return nil, Reject(CodeNotFound, "license %s not found", c.LicenseID)
	}
	switch l.Status {
	case StatusActive:
		return nil, Reject(CodeAlreadyActivated, "license %s is already activated", c.LicenseID)
	case StatusExpired:
		return nil, Reject(CodeLicenseExpired, "license %s expired at %s", c.LicenseID, l.ExpiresAt.Format(time.RFC3339))
	}
	if l.Source == SourceAWS && now.Sub(l.PurchasedAt) > AWSActivationWindow {
		return nil, Reject(CodeActivationWindowExpired,
			"AWS Marketplace licenses must be activated within 4 hours of purchase (purchased %s); restart set-up",
			l.PurchasedAt.Format(time.RFC3339))
	}
	return []events.Payload{events.LicenseActivated{LicenseID: c.LicenseID, ActivatedAt: now}}, nil
}

// UpgradeMakesItem reports whether an upgrade of a license from source becomes a separate item
// of the license list (on both marketplaces) rather than raising the license's own credits
// (sales licenses).
func UpgradeMakesItem(source string) bool { return source == SourceAWS || source == SourceAzure }

// decideUpgrade adds credits to an active license. On AWS and Azure Marketplace the increase is
// an item of its own (ContractUpgraded with ItemID) that shares the license's term; an item id
// left out is derived from the account alone ("<license>-u<n>", counting on from the license's
// items to the first id the account does not hold), so a replay decides the same id; the writer
// usually injects one that no account holds. Azure's whole-number and 1,000,000-user limits
// apply to Azure alone.
func decideUpgrade(a Account, c UpgradeContract, now time.Time) ([]events.Payload, error) {
	l, ok := a.Licenses[c.LicenseID]
	if !ok {
		return nil, Reject(CodeNotFound, "license %s not found", c.LicenseID)
	}
	if l.ParentID != "" {
		return nil, Reject(CodeInvalidArgument, "%s is an upgrade item; upgrade license %s instead", c.LicenseID, l.ParentID)
	}
	switch l.Status {
	case StatusExpired:
		return nil, Reject(CodeLicenseExpired, "license %s expired at %s", c.LicenseID, l.ExpiresAt.Format(time.RFC3339))
	case StatusPending:
		return nil, Reject(CodeLicenseNotActive, "license %s is not activated", c.LicenseID)
	}
	if err := positive("additional_credits", c.AdditionalCredits); err != nil {
		return nil, err
	}
	p := events.ContractUpgraded{LicenseID: c.LicenseID, AdditionalCredits: c.AdditionalCredits, ExpiresAt: l.ExpiresAt, UpgradedAt: now}
	if !UpgradeMakesItem(l.Source) {
		if c.ItemID != "" {
			return nil, Reject(CodeInvalidArgument, "item_id applies to aws_marketplace and azure_marketplace licenses only")
		}
		return []events.Payload{p}, nil
	}
	family := decimal.Zero
	items := 0
	for _, x := range a.Licenses {
		if x.ID == l.ID || x.ParentID == l.ID {
			family = family.Add(x.Credits)
			items++
		}
	}
	if l.Source == SourceAzure && (!c.AdditionalCredits.IsInteger() || family.Add(c.AdditionalCredits).GreaterThan(AzureMaxCredits)) {
		return nil, Reject(CodeInvalidArgument, "azure_marketplace upgrades are whole numbers and a license holds at most 1000000 users (now %s)", family)
	}
	p.ItemID = c.ItemID
	if p.ItemID == "" {
		for n := items; ; n++ {
			p.ItemID = fmt.Sprintf("%s-u%d", c.LicenseID, n)
			if _, taken := a.Licenses[p.ItemID]; !taken && ValidID(p.ItemID) {
				break
			}
			if n > items+len(a.Licenses) {
				return nil, Reject(CodeInvalidArgument, "cannot derive an item_id from %s; give one", c.LicenseID)
			}
		}
	} else if !ValidID(p.ItemID) {
		return nil, Reject(CodeInvalidArgument, "item_id must be 1-64 characters of A-Za-z0-9_-")
	} else if _, taken := a.Licenses[p.ItemID]; taken {
		return nil, Reject(CodeAlreadyExists, "license item %s already exists", p.ItemID)
	}
	return []events.Payload{p}, nil
}

func (r Rules) feature(id string) (Feature, error) {
	f, ok := r.Catalogue.Feature(id)
	if !ok {
		return Feature{}, Reject(CodeUnknownFeature, "feature %q is not in the catalogue", id)
	}
	return f, nil
}

func (r Rules) decideAllocate(a Account, c AllocateCredits) ([]events.Payload, error) {
	if _, err := r.feature(c.Feature); err != nil {
		return nil, err
	}
	if err := positive("credits", c.Credits); err != nil {
		return nil, err
	}
	if a.BillingModel(c.Feature) == ModelPayg {
		return nil, Reject(CodeFeatureOnPayg, "feature %s is billed pay-as-you-go and holds no credits", c.Feature)
	}
	if avail := a.AvailableCredits(); avail.LessThan(c.Credits) {
		e := Reject(CodeInsufficientCredits, "requested %s credits, %s available", c.Credits, avail)
		e.Data = map[string]string{"available": avail.String(), "requested": c.Credits.String()}
		return nil, e
	}
	return []events.Payload{events.CreditsAllocated{Feature: c.Feature, Credits: c.Credits}}, nil
}

func (r Rules) decideRelease(a Account, c ReleaseCredits) ([]events.Payload, error) {
	if _, err := r.feature(c.Feature); err != nil {
		return nil, err
	}
	if err := positive("credits", c.Credits); err != nil {
		return nil, err
	}
	if held := a.Allocations[c.Feature]; held.LessThan(c.Credits) {
		e := Reject(CodeInsufficientAllocation, "requested %s credits, feature %s holds %s", c.Credits, c.Feature, held)
		e.Data = map[string]string{"allocated": held.String(), "requested": c.Credits.String()}
		return nil, e
	}
	return []events.Payload{events.CreditsReleased{Feature: c.Feature, Credits: c.Credits, Reason: events.ReleaseRequested}}, nil
}

func decideAutoRenew(a Account, c SetAutoRenew) ([]events.Payload, error) {
	l, ok := a.Licenses[c.LicenseID]
	if !ok {
		return nil, Reject(CodeNotFound, "license %s not found", c.LicenseID)
	}
	if l.ParentID != "" {
		return nil, Reject(CodeInvalidArgument, "%s is an upgrade item; set auto-renew on license %s", c.LicenseID, l.ParentID)
	}
	if l.Status == StatusExpired {
		return nil, Reject(CodeLicenseExpired, "license %s expired at %s", c.LicenseID, l.ExpiresAt.Format(time.RFC3339))
	}
	return []events.Payload{events.AutoRenewSet{LicenseID: c.LicenseID, Enabled: c.Enabled}}, nil
}

func (r Rules) decidePaygPurchase(a Account, c PurchasePaygContract, now time.Time) ([]events.Payload, error) {
	if !ValidID(c.ContractID) {
		return nil, Reject(CodeInvalidArgument, "contract_id must be 1-64 characters of A-Za-z0-9_-")
	}
	if _, exists := a.Contracts[c.ContractID]; exists {
		return nil, Reject(CodeAlreadyExists, "PAYG contract %s already exists", c.ContractID)
	}
	features := make([]string, 0, len(c.Rates))
	for f := range c.Rates {
		features = append(features, f)
	}
	sort.Strings(features)
	sized := map[string]bool{}
	for _, f := range features {
		id, tier := SplitRateKey(f)
		feat, err := r.feature(id)
		if err != nil {
			return nil, err
		}
		if !feat.PaygEligible {
			return nil, Reject(CodeFeatureNotPaygEligible, "feature %s cannot be billed pay-as-you-go", id)
		}
		if tier != "" && (!feat.InstanceSized || !oneOf(tier, RateTiers)) {
			return nil, Reject(CodeInvalidArgument, "rate key %s: only instance-sized features take a tier, one of %v", f, RateTiers)
		}
		if err := positive("rates."+f, c.Rates[f]); err != nil {
			return nil, err
		}
		if feat.InstanceSized {
			sized[id] = true
		}
	}
	for _, f := range features { // in key order, so the first offending feature is named
		if id, _ := SplitRateKey(f); sized[id] {
			if err := r.rateCard().CheckTierOrder(c.Rates, id); err != nil {
				return nil, err
			}
			delete(sized, id)
		}
	}
	rates := c.Rates
	if len(rates) == 0 {
		rates = nil
	}
	return []events.Payload{events.PaygContractPurchased{ContractID: c.ContractID, Rates: rates, PurchasedAt: now}}, nil
}

func decidePaygActivate(a Account, c ActivatePaygContract, now time.Time) ([]events.Payload, error) {
	k, ok := a.Contracts[c.ContractID]
	if !ok {
		return nil, Reject(CodeNotFound, "PAYG contract %s not found", c.ContractID)
	}
	if k.Active {
		return nil, Reject(CodeAlreadyActivated, "PAYG contract %s is already activated", c.ContractID)
	}
	return []events.Payload{events.PaygContractActivated{ContractID: c.ContractID, ActivatedAt: now}}, nil
}

func (r Rules) decideSwitch(a Account, c SwitchBillingModel, now time.Time) ([]events.Payload, error) {
	f, err := r.feature(c.Feature)
	if err != nil {
		return nil, err
	}
	if !f.PaygEligible {
		return nil, Reject(CodeFeatureNotPaygEligible, "feature %s cannot be billed pay-as-you-go", c.Feature)
	}
	if c.To != ModelPayg && c.To != ModelCredits {
		return nil, Reject(CodeInvalidArgument, "to must be payg or credits")
	}
	from := a.BillingModel(c.Feature)
	if from == c.To {
		return nil, Reject(CodeAlreadyOnModel, "feature %s is already on %s", c.Feature, c.To)
	}
	if c.To == ModelPayg && !a.HasActivePayg() {
		return nil, Reject(CodeNoActivePaygContract, "switching to pay-as-you-go needs an active PAYG contract")
	}
	if next := a.Features[c.Feature].NextSwitchAllowedAt; now.Before(next) {
		e := Reject(CodeSwitchTooSoon, "feature %s can switch again at %s", c.Feature, next.Format(time.RFC3339Nano))
		e.Data = map[string]string{"next_switch_allowed_at": next.Format(time.RFC3339Nano)}
		return nil, e
	}
	var out []events.Payload
	if held := a.Allocations[c.Feature]; c.To == ModelPayg && held.IsPositive() {
		out = append(out, events.CreditsReleased{Feature: c.Feature, Credits: held, Reason: events.ReleaseSwitchedToPayg})
	}
	return append(out, events.BillingModelSwitched{
		Feature: c.Feature, From: from, To: c.To, At: now, NextSwitchAllowedAt: now.Add(SwitchInterval),
	}), nil
}
