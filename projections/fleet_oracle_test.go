package projections_test

import (
	"math/big"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// The oracle: an account folded from its event payloads by rules written out again here,
// independently of ledger.Evolve and the projections, so the fleet read models can be checked
// against something they do not share code with.

type oLicense struct {
	id, parent, source string
	credits            decimal.Decimal
	status             string
	autoRenew          bool
	expires            time.Time
}

type oContract struct {
	id        string
	active    bool
	activated time.Time
}

type oAccount struct {
	id                  string
	events              int
	licenses            map[string]*oLicense
	order               []string
	alloc               map[string]decimal.Decimal
	model               map[string]string
	subscription        string
	graceUntil, expired time.Time
	contracts           []*oContract
	usage               []events.UsageRecorded
}

func newOAccount(id string) *oAccount {
	return &oAccount{id: id, licenses: map[string]*oLicense{}, alloc: map[string]decimal.Decimal{}, model: map[string]string{}}
}

// family is a license and every item that extends it.
func (o *oAccount) family(id string) []*oLicense {
	var out []*oLicense
	for _, k := range o.order {
		if l := o.licenses[k]; l.id == id || l.parent == id {
			out = append(out, l)
		}
	}
	return out
}

func (o *oAccount) apply(p events.Payload) {
	o.events++
	switch e := p.(type) {
	case events.LicensePurchased:
		o.licenses[e.LicenseID] = &oLicense{id: e.LicenseID, source: e.Source, credits: e.Credits, status: "pending",
			autoRenew: e.AutoRenew, expires: e.ExpiresAt}
		o.order = append(o.order, e.LicenseID)
	case events.LicenseActivated:
		o.licenses[e.LicenseID].status = "active"
	case events.ContractUpgraded:
		parent := o.licenses[e.LicenseID]
		if e.ItemID == "" {
			parent.credits = parent.credits.Add(e.AdditionalCredits)
			return
		}
		o.licenses[e.ItemID] = &oLicense{id: e.ItemID, parent: parent.id, source: parent.source, credits: e.AdditionalCredits,
			status: parent.status, autoRenew: parent.autoRenew, expires: e.ExpiresAt}
		o.order = append(o.order, e.ItemID)
	case events.CreditsAllocated:
		o.alloc[e.Feature] = o.alloc[e.Feature].Add(e.Credits)
	case events.CreditsReleased:
		o.alloc[e.Feature] = o.alloc[e.Feature].Sub(e.Credits)
	case events.AutoRenewSet:
		for _, l := range o.family(e.LicenseID) {
			l.autoRenew = e.Enabled
		}
	case events.LicenseRenewed:
		for _, l := range o.family(e.LicenseID) {
			l.expires = e.ExpiresAt
		}
	case events.LicenseExpired:
		for _, l := range o.family(e.LicenseID) {
			l.status = "expired"
		}
	case events.PaygContractPurchased:
		o.contracts = append(o.contracts, &oContract{id: e.ContractID})
	case events.PaygContractActivated:
		for _, k := range o.contracts {
			if k.id == e.ContractID {
				k.active, k.activated = true, e.ActivatedAt
			}
		}
	case events.BillingModelSwitched:
		o.model[e.Feature] = e.To
	case events.UsageRecorded:
		o.usage = append(o.usage, e)
	case events.SubscriptionLinked:
		o.subscription, o.graceUntil, o.expired = e.SubscriptionID, time.Time{}, time.Time{}
	case events.SubscriptionUnlinked:
		o.subscription, o.graceUntil, o.expired = "", e.GraceUntil, time.Time{}
	case events.AccountExpired:
		o.expired = e.ExpiredAt
	}
}

// addYear is a 12-month renewal term: the same day, or the month's last day when the month is
// shorter.
func addYear(t time.Time) time.Time {
	y, m, d := t.Date()
	last := time.Date(y+1, m+1, 0, 0, 0, 0, 0, t.Location()).Day()
	if d > last {
		d = last
	}
	return time.Date(y+1, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// due applies what had fallen due at t and was not recorded yet (renewals, expiries, the end
// of a grace period); it returns how many events that is.
func (o *oAccount) due(t time.Time) int {
	n := 0
	for _, id := range o.order {
		l := o.licenses[id]
		if l.parent != "" || l.status == "expired" || l.expires.After(t) {
			continue
		}
		if !l.autoRenew {
			for _, m := range o.family(id) {
				m.status = "expired"
			}
			n++
			continue
		}
		exp := l.expires
		for !exp.After(t) {
			exp = addYear(exp)
			n++
		}
		for _, m := range o.family(id) {
			m.expires = exp
		}
	}
	if o.subscription == "" && !o.graceUntil.IsZero() && o.expired.IsZero() && !t.Before(o.graceUntil) {
		o.expired = o.graceUntil
		n++
	}
	return n
}

func (o *oAccount) pool() (total, allocated decimal.Decimal) {
	for _, l := range o.licenses {
		if l.status == "active" {
			total = total.Add(l.credits)
		}
	}
	for _, c := range o.alloc {
		allocated = allocated.Add(c)
	}
	return total, allocated
}

func (o *oAccount) status() string {
	switch {
	case o.subscription != "":
		return "active"
	case !o.expired.IsZero():
		return "expired"
	case !o.graceUntil.IsZero():
		return "grace"
	}
	return "active"
}

func (o *oAccount) billingPath() string {
	if o.subscription != "" {
		return "marketplace"
	}
	for _, l := range o.licenses {
		if l.status == "active" {
			return "annual"
		}
	}
	return "none"
}

func (o *oAccount) sources() []string {
	seen := map[string]bool{}
	out := []string{}
	for _, l := range o.licenses {
		if !seen[l.source] {
			seen[l.source] = true
			out = append(out, l.source)
		}
	}
	sort.Strings(out)
	return out
}

// nextExpiry is the earliest end of an active license item that will not renew.
func (o *oAccount) nextExpiry() *time.Time {
	var next *time.Time
	for _, l := range o.licenses {
		if l.status == "active" && !l.autoRenew && (next == nil || l.expires.Before(*next)) {
			e := l.expires
			next = &e
		}
	}
	return next
}

// contractInEffect is the contract activated last (on a tie, the one purchased later).
func (o *oAccount) contractInEffect() *string {
	var best *oContract
	for _, k := range o.contracts {
		if k.active && (best == nil || !k.activated.Before(best.activated)) {
			best = k
		}
	}
	if best == nil {
		return nil
	}
	return &best.id
}

// oCharge is one account's charges in one month.
type oCharge struct {
	exact   decimal.Decimal
	records int
}

func (o *oAccount) charges(month string) (oCharge, bool) {
	var c oCharge
	for _, u := range o.usage {
		if u.OccurredAt.UTC().Format("2006-01") == month {
			c.exact, c.records = c.exact.Add(u.Amount), c.records+1
		}
	}
	return c, c.records > 0
}

// cents rounds a non-negative amount half-even to two decimals, exactly (big.Rat), and writes
// both decimals: the documented rule, without the decimal package's rounding.
func cents(d decimal.Decimal) string {
	r, ok := new(big.Rat).SetString(d.String())
	if !ok || r.Sign() < 0 {
		panic("cents: " + d.String())
	}
	r.Mul(r, big.NewRat(100, 1))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	twice := new(big.Int).Mul(m, big.NewInt(2))
	switch twice.Cmp(r.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	s := q.String()
	for len(s) < 3 {
		s = "0" + s
	}
	return s[:len(s)-2] + "." + s[len(s)-2:]
}

// isTie says whether an amount lies exactly half-way between two cents, and which way the rule
// sends it.
func isTie(d decimal.Decimal) (tie, up bool) {
	r, _ := new(big.Rat).SetString(d.String())
	r.Mul(r, big.NewRat(200, 1))
	if !r.IsInt() || r.Num().Bit(0) == 0 {
		return false, false
	}
	q := new(big.Int).Quo(r.Num(), big.NewInt(2)) // floor of cents
	return true, q.Bit(0) == 1
}

// oFleet folds a prefix of a stream into oracle accounts; with a time, only the events that
// occurred at or before it, then what had fallen due then.
func oFleet(ids []string, ps []events.Payload, times []time.Time, upTo int, at *time.Time) (map[string]*oAccount, int) {
	accs := map[string]*oAccount{}
	for i := 0; i < upTo; i++ {
		if at != nil && times[i].After(*at) {
			break
		}
		o := accs[ids[i]]
		if o == nil {
			o = newOAccount(ids[i])
			accs[ids[i]] = o
		}
		o.apply(ps[i])
	}
	due := 0
	if at != nil {
		for _, o := range accs {
			due += o.due(*at)
		}
	}
	return accs, due
}

var _ = ledger.SourceSales
