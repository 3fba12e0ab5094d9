package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// memStream is an in-memory stream of stored events: the StreamHistory and AccountHistory the
// queries answer as_of from.
type memStream struct{ recs []ledger.Record }

func (m *memStream) Read(_ context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	for _, r := range m.recs {
		if r.Position < from {
			continue
		}
		if err := fn(r); err != nil {
			return r.Position, err
		}
	}
	return uint64(len(m.recs)), nil
}

func (m *memStream) ReadAccount(_ context.Context, id string) ([]ledger.Record, error) {
	var out []ledger.Record
	for _, r := range m.recs {
		if r.AccountID == id {
			out = append(out, r)
		}
	}
	return out, nil
}

// storedAt encodes one event as the writer stores it, occurring at the given time.
func storedAt(t *testing.T, account string, version uint64, at time.Time, p events.Payload) []byte {
	t.Helper()
	raw, err := events.EncodePayload(p)
	require.NoError(t, err)
	env := events.Envelope{EventID: "e", Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()),
		AccountID: account, Version: version, OccurredAt: at.UTC(), CommandID: "c", Payload: raw, PrevHash: events.ZeroHash}
	require.NoError(t, env.Seal())
	b, err := events.Encode(&env)
	require.NoError(t, err)
	return b
}

// ledgerSim drives ledger.Decide with seeded random commands on a few accounts, at a clock that
// moves by minutes, hours or weeks, and stores what it decides: a realistic random history
// (renewals, expiries, subscription moves, billing switches, usage across month boundaries).
type ledgerSim struct {
	t       *testing.T
	rng     *rand.Rand
	rules   ledger.Rules
	cat     ledger.Catalogue
	now     time.Time
	ids     []string
	state   map[string]ledger.Account
	stream  *memStream
	times   []time.Time // occurred_at of each position (index position-1)
	payload []events.Payload
	holder  map[string]string // subscription -> account holding it
	n       int
	reached map[string]int
}

func newLedgerSim(t *testing.T, seed uint64, accounts int) *ledgerSim {
	s := &ledgerSim{t: t, rng: rand.New(rand.NewPCG(seed, 7)), cat: ledger.DefaultCatalogue(),
		now: time.Date(2026, 1, 27, 22, 0, 0, 0, time.UTC), state: map[string]ledger.Account{},
		stream: &memStream{}, holder: map[string]string{}, reached: map[string]int{}}
	s.rules = ledger.NewRules(s.cat)
	for i := range accounts {
		s.ids = append(s.ids, fmt.Sprintf("acc-%c%d", 'a'+rune(i%3), i))
	}
	return s
}

func (s *ledgerSim) account(id string) ledger.Account {
	if a, ok := s.state[id]; ok {
		return a
	}
	return ledger.NewAccount(id)
}

// appendEvents stores an account's decided events at the sim's clock.
func (s *ledgerSim) appendEvents(id string, ps []events.Payload) {
	a := s.account(id)
	for _, p := range ps {
		v := a.Version + 1
		pos := uint64(len(s.stream.recs) + 1)
		s.stream.recs = append(s.stream.recs, ledger.Record{AccountID: id, Position: pos, Data: storedAt(s.t, id, v, s.now, p)})
		s.times = append(s.times, s.now)
		s.payload = append(s.payload, p)
		a = ledger.Evolve(a, events.Event{Envelope: events.Envelope{AccountID: id, Version: v}, Position: pos, Data: p})
		s.note(id, p)
		switch e := p.(type) {
		case events.SubscriptionLinked:
			s.holder[e.SubscriptionID] = id
		case events.SubscriptionUnlinked:
			if s.holder[e.SubscriptionID] == id {
				delete(s.holder, e.SubscriptionID)
			}
		}
	}
	s.state[id] = a
	if a.Shortfall().IsPositive() {
		s.reached["shortfall"]++
	}
}

// note counts the outcomes the generator reached.
func (s *ledgerSim) note(id string, p events.Payload) {
	k := p.EventType()
	switch e := p.(type) {
	case events.ContractUpgraded:
		k += " " + s.account(id).Licenses[e.LicenseID].Source
		if e.ItemID == "" {
			k += " (no item)"
		}
	case events.BillingModelSwitched:
		k += " to " + e.To
	case events.SubscriptionUnlinked:
		k += " " + e.Reason
	case events.UsageRecorded:
		if e.OccurredAt.UTC().Format("2006-01") != s.now.Format("2006-01") {
			k += " in the month before it was recorded"
		}
	}
	s.reached[k]++
}

func (s *ledgerSim) pick(list []string) string { return list[s.rng.IntN(len(list))] }

func (s *ledgerSim) credits(whole bool) decimal.Decimal {
	if whole {
		return decimal.NewFromInt(int64(3 + s.rng.IntN(400)))
	}
	return decimal.New(int64(1+s.rng.IntN(4_000_000)), -int32(s.rng.IntN(5)))
}

// usageQuantities hold exact half-cent ties at the card's rates (0.5 GB at 0.03 is 0.015, 0.1
// accounts at 0.25 is 0.025), so rounding meets ties both ways.
var usageQuantities = []string{"0.1", "0.5", "1", "2", "2.5", "3.3", "0.0001", "12.3456"}

// step advances the clock and decides one random command.
func (s *ledgerSim) step() {
	switch r := s.rng.IntN(10); {
	case r < 6:
		s.now = s.now.Add(time.Duration(s.rng.IntN(600)) * time.Second)
	case r < 9:
		s.now = s.now.Add(time.Duration(1+s.rng.IntN(30)) * time.Hour)
	default:
		s.now = s.now.Add(time.Duration(3+s.rng.IntN(18)) * 24 * time.Hour)
	}
	id := s.pick(s.ids)
	a := s.account(id)
	s.n++
	cmd := s.command(id, a)
	if cmd == nil {
		return
	}
	if l, ok := cmd.(ledger.LinkSubscription); ok && l.HeldBy != "" && l.HeldBy != id {
		from := l.HeldBy
		out, err1 := s.rules.Decide(s.account(from), ledger.TransferSubscription{SubscriptionID: l.SubscriptionID,
			Marketplace: l.Marketplace, ToAccountID: id}, s.now)
		in, err2 := s.rules.Decide(a, l, s.now)
		if err1 != nil || err2 != nil {
			s.reached["rejected"]++
			return
		}
		s.appendEvents(from, out)
		s.appendEvents(id, in)
		return
	}
	ps, err := s.rules.Decide(a, cmd, s.now)
	if err != nil {
		s.reached["rejected"]++
		return
	}
	s.appendEvents(id, ps)
	// An AWS Marketplace license is activated within its four-hour window, most of the time.
	if p, ok := cmd.(ledger.PurchaseLicense); ok && p.Source == ledger.SourceAWS && s.rng.IntN(3) > 0 {
		s.now = s.now.Add(time.Duration(s.rng.IntN(3600)) * time.Second)
		if ps, err := s.rules.Decide(s.account(id), ledger.ActivateLicense{LicenseID: p.LicenseID}, s.now); err == nil {
			s.appendEvents(id, ps)
		}
	}
}

func (s *ledgerSim) licensesWhere(a ledger.Account, keep func(ledger.License) bool) []string {
	var out []string
	for _, id := range a.LicenseOrder {
		if keep(a.Licenses[id]) {
			out = append(out, id)
		}
	}
	return out
}

var simSubscriptions = map[string]string{"sub-1": ledger.MarketplaceAWS, "sub-2": ledger.MarketplaceAzure, "sub-3": ledger.MarketplaceAWS}

func (s *ledgerSim) command(id string, a ledger.Account) ledger.Command {
	paygFeatures := []string{"cloud_account_assessment", "container_security", "file_security", "advanced_server_workload_protection"}
	allFeatures := append([]string{"endpoint_security_core", "email_security"}, paygFeatures...)
	switch s.rng.IntN(19) {
	case 0, 1:
		src := s.pick([]string{ledger.SourceSales, ledger.SourceAWS, ledger.SourceAzure})
		c := ledger.PurchaseLicense{LicenseID: fmt.Sprintf("%s-L%d", id, s.n), Source: src, Credits: s.credits(src == ledger.SourceAzure),
			TermMonths: 1 + s.rng.IntN(3), AutoRenew: s.rng.IntN(2) == 0}
		if s.rng.IntN(8) == 0 {
			c.ContractStart = s.now.AddDate(0, -s.rng.IntN(6), -s.rng.IntN(20))
		}
		return c
	case 2, 3:
		if p := s.licensesWhere(a, func(l ledger.License) bool { return l.Status == ledger.StatusPending }); len(p) > 0 {
			return ledger.ActivateLicense{LicenseID: s.pick(p)}
		}
	case 4:
		if p := s.licensesWhere(a, func(l ledger.License) bool { return l.Status == ledger.StatusActive && l.ParentID == "" }); len(p) > 0 {
			lic := a.Licenses[s.pick(p)]
			if lic.Source == ledger.SourceAWS && s.rng.IntN(3) == 0 {
				// An AWS upgrade stored before AWS upgrades became items: no item id, the
				// license's own credits rise (DOMAIN.md).
				s.appendEvents(id, []events.Payload{events.ContractUpgraded{LicenseID: lic.ID, AdditionalCredits: s.credits(false),
					ExpiresAt: lic.ExpiresAt, UpgradedAt: s.now}})
				return nil
			}
			return ledger.UpgradeContract{LicenseID: lic.ID, AdditionalCredits: s.credits(lic.Source == ledger.SourceAzure)}
		}
	case 5, 6:
		c := s.credits(false)
		if av := a.AvailableCredits(); av.IsPositive() && s.rng.IntN(4) > 0 {
			c = av.Mul(decimal.New(int64(1+s.rng.IntN(100)), -2)).Truncate(4)
		}
		return ledger.AllocateCredits{Feature: s.pick(allFeatures), Credits: c}
	case 7:
		for f, held := range a.Allocations {
			c := held
			if s.rng.IntN(2) == 0 {
				c = held.Div(decimal.NewFromInt(2)).Truncate(4)
			}
			return ledger.ReleaseCredits{Feature: f, Credits: c}
		}
	case 8:
		if p := s.licensesWhere(a, func(l ledger.License) bool { return l.ParentID == "" }); len(p) > 0 {
			return ledger.SetAutoRenew{LicenseID: s.pick(p), Enabled: s.rng.IntN(2) == 0}
		}
	case 9:
		for _, k := range a.ContractOrder {
			if !a.Contracts[k].Active {
				return ledger.ActivatePaygContract{ContractID: k}
			}
		}
		var rates map[string]decimal.Decimal
		if s.rng.IntN(2) == 0 {
			rates = map[string]decimal.Decimal{"file_security": decimal.RequireFromString("0.025")}
		}
		return ledger.PurchasePaygContract{ContractID: fmt.Sprintf("%s-P%d", id, s.n), Rates: rates}
	case 10, 15:
		f := s.pick(paygFeatures)
		to := ledger.ModelPayg
		if a.BillingModel(f) == ledger.ModelPayg {
			to = ledger.ModelCredits
		}
		return ledger.SwitchBillingModel{Feature: f, To: to}
	case 11, 12, 16, 17, 18:
		return s.usage(a, paygFeatures)
	case 13:
		sub := s.pick([]string{"sub-1", "sub-2", "sub-3"})
		if a.Subscription.ID != "" && s.rng.IntN(2) == 0 {
			return ledger.UnlinkSubscription{SubscriptionID: a.Subscription.ID}
		}
		return ledger.LinkSubscription{SubscriptionID: sub, Marketplace: simSubscriptions[sub], HeldBy: s.holder[sub]}
	case 14:
		return ledger.AdvanceTime{}
	}
	return nil
}

// usage records usage of a feature the account has on PAYG, up to 47 hours back, often right
// at (or a nanosecond before) the first instant of the month, and given in a zone east of UTC.
func (s *ledgerSim) usage(a ledger.Account, features []string) ledger.Command {
	var on []string
	for _, f := range features {
		if a.BillingModel(f) == ledger.ModelPayg {
			on = append(on, f)
		}
	}
	if len(on) == 0 {
		return nil
	}
	f := s.pick(on)
	at := s.now.Add(-time.Duration(s.rng.Int64N(int64(47 * time.Hour))))
	first := time.Date(s.now.Year(), s.now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if s.now.Sub(first) < 47*time.Hour && s.rng.IntN(2) == 0 {
		at = first.Add(-time.Duration(s.rng.IntN(2))) // exactly the month's first instant, or 1 ns before
	}
	at = at.In(time.FixedZone("UTC+2", 2*3600))
	feat, _ := s.cat.Feature(f)
	c := ledger.RecordUsage{UsageID: fmt.Sprintf("u%d", s.n), Feature: f, Quantity: decimal.RequireFromString(s.pick(usageQuantities)),
		Unit: feat.Unit, OccurredAt: at}
	if feat.InstanceSized {
		c.InstanceSize = s.pick([]string{"medium", "large", "xlarge"})
		c.CloudConnector = s.pick([]string{"aws", "azure", "gcp", "none"})
		c.VCenter = s.rng.IntN(3) == 0
	}
	return c
}
