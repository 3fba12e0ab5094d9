package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

var decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// canon makes an answer comparable: JSON with every decimal string in its shortest form and
// every time in UTC.
func canon(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if decimalText.MatchString(x) {
				return decimal.RequireFromString(x).String()
			}
			if tm, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return tm.UTC().Format(time.RFC3339Nano)
			}
		}
		return v
	}
	return walk(out)
}

func optTime(tm time.Time) *time.Time {
	if tm.IsZero() {
		return nil
	}
	u := tm.UTC()
	return &u
}

// wantTotals are the fleet totals the oracle accounts add up to.
func wantTotals(accs map[string]*oAccount, position uint64, past *projections.Past) projections.Totals {
	w := projections.Totals{OK: true, Position: position, Past: past,
		ByStatus:      map[string]int{"active": 0, "grace": 0, "expired": 0},
		ByBillingPath: map[string]int{"marketplace": 0, "annual": 0, "none": 0},
		BySource:      map[string]projections.SourceTotals{"sales": {}, "aws_marketplace": {}, "azure_marketplace": {}},
		ByFeature:     map[string]projections.FeatureTotals{}}
	for _, f := range ledger.DefaultCatalogue().Features() {
		w.ByFeature[f.ID] = projections.FeatureTotals{}
	}
	for _, o := range accs {
		w.Accounts++
		w.ByStatus[o.status()]++
		w.ByBillingPath[o.billingPath()]++
		total, alloc := o.pool()
		avail, short := decimal.Max(total.Sub(alloc), decimal.Zero), decimal.Max(alloc.Sub(total), decimal.Zero)
		if short.IsPositive() {
			w.WithShortfall++
		}
		c := &w.Credits
		c.Active, c.Allocated, c.Available, c.Shortfall = c.Active.Add(total), c.Allocated.Add(alloc), c.Available.Add(avail), c.Shortfall.Add(short)
		for _, l := range o.licenses {
			c.Sold = c.Sold.Add(l.credits)
			s := w.BySource[l.source]
			s.Licenses++
			s.CreditsSold = s.CreditsSold.Add(l.credits)
			if l.status == "active" {
				s.ActiveLicenses++
				s.CreditsActive = s.CreditsActive.Add(l.credits)
			}
			w.BySource[l.source] = s
		}
		for _, src := range o.sources() {
			s := w.BySource[src]
			s.Accounts++
			w.BySource[src] = s
		}
		for f, held := range o.alloc {
			if held.IsPositive() {
				ft := w.ByFeature[f]
				ft.CreditsAllocated, ft.AccountsAllocating = ft.CreditsAllocated.Add(held), ft.AccountsAllocating+1
				w.ByFeature[f] = ft
			}
		}
		for f, m := range o.model {
			if m == ledger.ModelPayg {
				ft := w.ByFeature[f]
				ft.AccountsOnPayg++
				w.ByFeature[f] = ft
			}
		}
	}
	w.InGrace, w.Expired = w.ByStatus["grace"], w.ByStatus["expired"]
	return w
}

func sortedKeys(accs map[string]*oAccount) []string {
	ids := make([]string, 0, len(accs))
	for id := range accs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func wantSummary(o *oAccount) projections.AccountSummary {
	total, alloc := o.pool()
	return projections.AccountSummary{AccountID: o.id, Version: uint64(o.events), Status: o.status(), BillingPath: o.billingPath(),
		Sources: o.sources(), TotalCredits: total, AllocatedCredits: alloc,
		AvailableCredits: decimal.Max(total.Sub(alloc), decimal.Zero), Shortfall: decimal.Max(alloc.Sub(total), decimal.Zero),
		NextExpiryAt: o.nextExpiry(), GraceUntil: optTime(o.graceUntil), ExpiredAt: optTime(o.expired), PaygContractID: o.contractInEffect()}
}

// wantCharges is the month's PAYG charges of the oracle accounts, rounded by the documented
// rule (cents: half-even, from the exact sum each figure shows).
func wantCharges(accs map[string]*oAccount, month string, position uint64, past *projections.Past, reached map[string]int) projections.PaygCharges {
	w := projections.PaygCharges{OK: true, Position: position, Month: month, Rounding: projections.RoundingRule,
		Accounts: []projections.PaygChargeRow{}, Totals: []projections.PaygChargeTotal{}, Past: past}
	total := projections.PaygChargeTotal{Currency: "USD"}
	shown := func(d decimal.Decimal) string {
		if tie, up := isTie(d); tie {
			reached[map[bool]string{true: "a half-cent tie rounded up", false: "a half-cent tie rounded down"}[up]]++
		}
		return cents(d)
	}
	for _, id := range sortedKeys(accs) {
		o := accs[id]
		c, ok := o.charges(month)
		if !ok {
			continue
		}
		row := projections.PaygChargeRow{AccountID: id, Currency: "USD", Amount: shown(c.exact), AmountExact: c.exact,
			Records: c.records, Features: map[string]projections.UsageFeature{}}
		for _, u := range o.usage {
			if u.OccurredAt.UTC().Format("2006-01") != month {
				continue
			}
			f := row.Features[u.Feature]
			f.Unit, f.Quantity, f.AmountExact, f.Records = u.Unit, f.Quantity.Add(u.Quantity), f.AmountExact.Add(u.Amount), f.Records+1
			row.Features[u.Feature] = f
		}
		for k, f := range row.Features {
			f.Amount = shown(f.AmountExact)
			row.Features[k] = f
		}
		w.Accounts = append(w.Accounts, row)
		total.AmountExact, total.Records, total.Accounts = total.AmountExact.Add(c.exact), total.Records+c.records, total.Accounts+1
	}
	if total.Accounts > 0 {
		total.Amount = shown(total.AmountExact)
		w.Totals = append(w.Totals, total)
	}
	return w
}

// shownAmounts lists every shown amount of a charges answer with the exact sum it shows, so the
// strings themselves ("0.10", not "0.1") can be checked.
func shownAmounts(c projections.PaygCharges) map[string][2]string {
	out := map[string][2]string{}
	for _, r := range c.Accounts {
		out[r.AccountID] = [2]string{r.Amount, r.AmountExact.String()}
		for f, v := range r.Features {
			out[r.AccountID+"/"+f] = [2]string{v.Amount, v.AmountExact.String()}
		}
	}
	for _, t := range c.Totals {
		out["total "+t.Currency] = [2]string{t.Amount, t.AmountExact.String()}
	}
	return out
}

type fleetChecker struct {
	t   *testing.T
	ctx context.Context
	sim *ledgerSim
}

func (c fleetChecker) answer(q *projections.Queries, name string, r projections.QueryRequest) any {
	c.t.Helper()
	out, err := q.Answer(c.ctx, name, r)
	require.NoError(c.t, err, "%s %+v", name, r)
	return out
}

// allAccounts pages through the account list, checking the order and that no page repeats an
// account.
func (c fleetChecker) allAccounts(q *projections.Queries, asOf string) (rows []projections.AccountSummary, position uint64) {
	c.t.Helper()
	cursor := ""
	for range 1000 {
		page := c.answer(q, projections.QueryAccounts, projections.QueryRequest{AsOf: asOf, Limit: 4, Cursor: cursor}).(projections.AccountList)
		for _, r := range page.Accounts {
			if n := len(rows); n > 0 {
				require.Less(c.t, rows[n-1].AccountID, r.AccountID, "account ids in order, each once")
			}
			rows = append(rows, r)
		}
		position = page.Position
		if cursor = page.NextCursor; cursor == "" {
			return rows, position
		}
	}
	c.t.Fatal("the account list did not end")
	return nil, 0
}

// check compares every fleet read model with the oracle folded to the same point, and the
// totals with the sum of the one-account read models.
func (c fleetChecker) check(q *projections.Queries, upTo int, at *time.Time, what string) {
	t := c.t
	t.Helper()
	ids := make([]string, len(c.sim.stream.recs))
	for i, r := range c.sim.stream.recs {
		ids[i] = r.AccountID
	}
	accs, due := oFleet(ids, c.sim.payload, c.sim.times, upTo, at)
	position, asOf := uint64(upTo), ""
	var past *projections.Past
	if at != nil {
		position = 0
		for i := 0; i < upTo && !c.sim.times[i].After(*at); i++ {
			position = uint64(i + 1)
		}
		asOf = at.Format(time.RFC3339Nano)
		past = &projections.Past{AsOf: at.UTC(), UnrecordedEvents: due}
		if due > 0 {
			c.sim.reached["as_of with unrecorded renewals or expiries"]++
		}
	}
	tot := c.answer(q, projections.QueryTotals, projections.QueryRequest{AsOf: asOf}).(projections.Totals)
	require.Equal(t, canon(t, wantTotals(accs, position, past)), canon(t, tot), "totals %s", what)

	rows, pos := c.allAccounts(q, asOf)
	require.Equal(t, position, pos)
	want := []projections.AccountSummary{}
	for _, id := range sortedKeys(accs) {
		want = append(want, wantSummary(accs[id]))
	}
	if rows == nil {
		rows = []projections.AccountSummary{}
	}
	require.Equal(t, canon(t, want), canon(t, rows), "account list %s", what)

	// The totals are the sum of the one-account read models.
	sum := map[string]decimal.Decimal{}
	for _, id := range sortedKeys(accs) {
		b := canon(t, c.answer(q, projections.QueryBalance, projections.QueryRequest{AccountID: id, AsOf: asOf})).(map[string]any)
		for _, k := range []string{"total_credits", "allocated_credits", "available_credits", "shortfall"} {
			sum[k] = sum[k].Add(decimal.RequireFromString(b[k].(string)))
		}
		l := canon(t, c.answer(q, projections.QueryLicenses, projections.QueryRequest{AccountID: id, AsOf: asOf})).(map[string]any)
		for _, item := range l["licenses"].([]any) {
			sum["sold"] = sum["sold"].Add(decimal.RequireFromString(item.(map[string]any)["credits"].(string)))
		}
	}
	for k, got := range map[string]decimal.Decimal{"total_credits": tot.Credits.Active, "allocated_credits": tot.Credits.Allocated,
		"available_credits": tot.Credits.Available, "shortfall": tot.Credits.Shortfall, "sold": tot.Credits.Sold} {
		require.True(t, sum[k].Equal(got), "%s %s: the accounts' own read models sum to %s, the totals say %s", k, what, sum[k], got)
	}
	require.True(t, tot.Credits.Available.Sub(tot.Credits.Shortfall).Equal(tot.Credits.Active.Sub(tot.Credits.Allocated)),
		"available - shortfall = active - allocated %s", what)

	months := map[string]bool{}
	for _, o := range accs {
		for _, u := range o.usage {
			months[u.OccurredAt.UTC().Format("2006-01")] = true
		}
	}
	for m := range months {
		got := c.answer(q, projections.QueryPaygCharges, projections.QueryRequest{Month: m, AsOf: asOf, Limit: projections.MaxPageLimit}).(projections.PaygCharges)
		w := wantCharges(accs, m, position, past, c.sim.reached)
		require.Equal(t, canon(t, w), canon(t, got), "payg charges %s %s", m, what)
		require.Equal(t, shownAmounts(w), shownAmounts(got), "shown amounts %s %s", m, what)
	}
}

// The fleet read models after a seeded random history, checked against the oracle (an
// independent fold) after every few commands, live and as of many moments (before the first
// event, exactly at an event, a nanosecond before one, in the future); the cached live view
// also equals a fresh projector's, and as_of at the last event's instant equals the live view.
func TestFleetReadModelsAgainstOracle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reached := map[string]int{}
	for seed := uint64(1); seed <= 3; seed++ {
		sim := newLedgerSim(t, seed, 9)
		sim.reached = reached
		live := projections.NewProjector(zerolog.Nop())
		lq, err := projections.NewQueries(live, ledger.DefaultCatalogue(), time.Second)
		require.NoError(t, err)
		lq.UseHistory(sim.stream)
		c := fleetChecker{t: t, ctx: ctx, sim: sim}
		applied := 0
		for step := 0; step < 300; step++ {
			sim.step()
			for ; applied < len(sim.stream.recs); applied++ {
				r := sim.stream.recs[applied]
				live.Apply(r.Position, r.AccountID, r.Data)
			}
			if step%5 != 0 && step != 299 {
				continue // several changes between queries: more than one dirty row
			}
			c.check(lq, applied, nil, fmt.Sprintf("live, seed %d step %d", seed, step))
			if step%50 == 0 || step == 299 {
				fresh := projections.NewProjector(zerolog.Nop())
				for _, r := range sim.stream.recs {
					fresh.Apply(r.Position, r.AccountID, r.Data)
				}
				fq, err := projections.NewQueries(fresh, ledger.DefaultCatalogue(), time.Second)
				require.NoError(t, err)
				for _, name := range projections.FleetQueries {
					r := projections.QueryRequest{Limit: projections.MaxPageLimit}
					if name == projections.QueryTotals {
						r.Limit = 0
					}
					if name == projections.QueryPaygCharges {
						r.Month = sim.now.Format("2006-01")
					}
					assert.Equal(t, canon(t, c.answer(fq, name, r)), canon(t, c.answer(lq, name, r)), "%s cached vs fresh, seed %d step %d", name, seed, step)
				}
			}
		}
		require.Equal(t, len(sim.stream.recs), applied)
		first, last := sim.times[0], sim.times[len(sim.times)-1]
		moments := []time.Time{first.Add(-time.Nanosecond), first, last, last.Add(400 * 24 * time.Hour)}
		for range 12 {
			at := sim.times[sim.rng.IntN(len(sim.times))]
			moments = append(moments, at, at.Add(-time.Nanosecond), at.Add(time.Duration(sim.rng.IntN(3600))*time.Second))
		}
		for _, at := range moments {
			at = at.In(time.FixedZone("UTC-5", -5*3600)) // an as_of in any zone is the same instant
			c.check(lq, applied, &at, fmt.Sprintf("as of %s, seed %d", at.Format(time.RFC3339Nano), seed))
		}
		zero := time.Time{} // the zero time is a time before the first event, not "no bound"
		c.check(lq, applied, &zero, "as of the zero time")
		// As of the last event's instant, with nothing due then, the past view is the live one.
		if _, d := oFleetAt(sim, last); d == 0 {
			reached["as_of at the last event equals live"]++
			for _, name := range []string{projections.QueryTotals, projections.QueryAccounts} {
				r := projections.QueryRequest{}
				pastAns := canon(t, c.answer(lq, name, projections.QueryRequest{AsOf: last.Format(time.RFC3339Nano)})).(map[string]any)
				delete(pastAns, "as_of")
				delete(pastAns, "unrecorded_events")
				assert.Equal(t, canon(t, c.answer(lq, name, r)), any(pastAns), "%s as of the last event", name)
			}
		}
	}
	for _, k := range []string{
		events.TypeLicensePurchased, events.TypeLicenseActivated, events.TypeCreditsAllocated, events.TypeCreditsReleased,
		events.TypeAutoRenewSet, events.TypePaygContractPurchased, events.TypePaygContractActivated,
		events.TypeLicenseRenewed, events.TypeLicenseExpired, events.TypeSubscriptionLinked, events.TypeAccountExpired,
		events.TypeContractUpgraded + " sales (no item)", events.TypeContractUpgraded + " aws_marketplace",
		events.TypeContractUpgraded + " aws_marketplace (no item)", events.TypeContractUpgraded + " azure_marketplace",
		events.TypeBillingModelSwitched + " to payg", events.TypeBillingModelSwitched + " to credits",
		events.TypeSubscriptionUnlinked + " " + events.UnlinkRequested, events.TypeSubscriptionUnlinked + " " + events.UnlinkMoved,
		events.TypeUsageRecorded, events.TypeUsageRecorded + " in the month before it was recorded",
		"shortfall", "rejected", "a half-cent tie rounded up", "a half-cent tie rounded down",
		"as_of with unrecorded renewals or expiries",
	} {
		assert.Positive(t, reached[k], "the generator never reached %q (reached: %v)", k, reached)
	}
}

func oFleetAt(sim *ledgerSim, at time.Time) (map[string]*oAccount, int) {
	ids := make([]string, len(sim.stream.recs))
	for i, r := range sim.stream.recs {
		ids[i] = r.AccountID
	}
	return oFleet(ids, sim.payload, sim.times, len(ids), &at)
}
