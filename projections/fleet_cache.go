package projections

import (
	"sync"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/ledger"
)

// fleetRow is what one account contributes to the fleet read models, rendered once per change
// of the account rather than once per query.
type fleetRow struct {
	summary AccountSummary
	contrib contribution
	// charges are the account's PAYG charges by month (UTC), one row per currency.
	charges map[string][]PaygChargeRow
}

// contribution is what one account adds to the fleet totals.
type contribution struct {
	status, billingPath string
	shortfall           bool
	credits             CreditTotals
	sources             map[string]SourceTotals
	features            map[string]FeatureTotals
}

func rowOf(a ledger.Account) *fleetRow {
	r := &fleetRow{summary: SummaryOf(a), contrib: contributionOf(a), charges: map[string][]PaygChargeRow{}}
	if len(a.Usage) > 0 {
		u, _ := UsageOf(a, 0, "") // every month: cannot fail
		for _, m := range u.Months {
			r.charges[m.Month] = append(r.charges[m.Month], PaygChargeRow{AccountID: a.ID, Currency: m.Currency,
				Amount: m.Total.Amount, AmountExact: m.Total.AmountExact, Records: m.Total.Records, Features: m.Features})
		}
	}
	return r
}

func contributionOf(a ledger.Account) contribution {
	c := contribution{status: a.Status(), billingPath: a.BillingPath(), shortfall: a.Shortfall().IsPositive(),
		credits: CreditTotals{Active: a.TotalCredits(), Allocated: a.AllocatedCredits(), Available: a.AvailableCredits(), Shortfall: a.Shortfall()},
		sources: map[string]SourceTotals{}, features: map[string]FeatureTotals{}}
	for _, l := range a.Licenses {
		s := c.sources[l.Source]
		if s.Accounts == 0 {
			s.Accounts = 1
		}
		s.Licenses++
		s.CreditsSold = s.CreditsSold.Add(l.Credits)
		c.credits.Sold = c.credits.Sold.Add(l.Credits)
		if l.Status == ledger.StatusActive {
			s.ActiveLicenses++
			s.CreditsActive = s.CreditsActive.Add(l.Credits)
		}
		c.sources[l.Source] = s
	}
	for f, credits := range a.Allocations {
		ft := c.features[f]
		ft.CreditsAllocated = credits
		if credits.IsPositive() {
			ft.AccountsAllocating = 1
		}
		c.features[f] = ft
	}
	for f := range a.Features {
		if a.BillingModel(f) == ledger.ModelPayg {
			ft := c.features[f]
			ft.AccountsOnPayg = 1
			c.features[f] = ft
		}
	}
	return c
}

// newTotals is the totals of no account: every status, billing path, source and catalogue
// feature present with zeros.
func newTotals(cat ledger.Catalogue) Totals {
	t := Totals{OK: true,
		ByStatus:      map[string]int{ledger.AccountStatusActive: 0, ledger.AccountStatusGrace: 0, ledger.AccountStatusExpired: 0},
		ByBillingPath: map[string]int{ledger.BillingMarketplace: 0, ledger.BillingAnnual: 0, ledger.BillingNone: 0},
		BySource:      map[string]SourceTotals{ledger.SourceSales: {}, ledger.SourceAWS: {}, ledger.SourceAzure: {}},
		ByFeature:     map[string]FeatureTotals{},
	}
	for _, f := range cat.Features() {
		t.ByFeature[f.ID] = FeatureTotals{}
	}
	return t
}

// addContribution adds (sign 1) or removes (sign -1) one account's contribution to t; decimals
// stay exact.
func addContribution(t *Totals, c contribution, sign int) {
	d := decimal.NewFromInt(int64(sign))
	t.Accounts += sign
	t.ByStatus[c.status] += sign
	t.ByBillingPath[c.billingPath] += sign
	if c.shortfall {
		t.WithShortfall += sign
	}
	x := &t.Credits
	x.Sold, x.Active = x.Sold.Add(c.credits.Sold.Mul(d)), x.Active.Add(c.credits.Active.Mul(d))
	x.Allocated, x.Available = x.Allocated.Add(c.credits.Allocated.Mul(d)), x.Available.Add(c.credits.Available.Mul(d))
	x.Shortfall = x.Shortfall.Add(c.credits.Shortfall.Mul(d))
	for src, v := range c.sources {
		s := t.BySource[src]
		s.Licenses, s.ActiveLicenses, s.Accounts = s.Licenses+sign*v.Licenses, s.ActiveLicenses+sign*v.ActiveLicenses, s.Accounts+sign*v.Accounts
		s.CreditsSold, s.CreditsActive = s.CreditsSold.Add(v.CreditsSold.Mul(d)), s.CreditsActive.Add(v.CreditsActive.Mul(d))
		t.BySource[src] = s
	}
	for f, v := range c.features {
		ft := t.ByFeature[f]
		ft.CreditsAllocated = ft.CreditsAllocated.Add(v.CreditsAllocated.Mul(d))
		ft.AccountsAllocating += sign * v.AccountsAllocating
		ft.AccountsOnPayg += sign * v.AccountsOnPayg
		t.ByFeature[f] = ft
	}
	t.InGrace, t.Expired = t.ByStatus[ledger.AccountStatusGrace], t.ByStatus[ledger.AccountStatusExpired]
}

// cloneTotals copies the totals' maps, so an answer never shares them with the cache.
func cloneTotals(t Totals) Totals {
	c := t
	c.ByStatus, c.ByBillingPath = copyMap(t.ByStatus), copyMap(t.ByBillingPath)
	c.BySource, c.ByFeature = copyMap(t.BySource), copyMap(t.ByFeature)
	return c
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// fleetCache keeps every account's fleetRow and the running totals. The fold only marks the
// accounts it changes (dirty); the next fleet query re-renders those rows and moves the totals
// by their difference, so a query costs what changed since the last one, not the whole fleet.
type fleetCache struct {
	mu     sync.Mutex // serialises fleet queries: refresh and render
	rows   map[string]*fleetRow
	totals Totals
	ready  bool
}

// markDirty records that an account changed: the fold calls it with the projector's write lock,
// liveFleet with the read lock and the cache's lock (only fleet queries, serialised by that lock,
// touch dirty while the read lock is held).
func (p *Projector) markDirty(accountID string) {
	if p.dirty == nil {
		p.dirty = map[string]struct{}{}
	}
	p.dirty[accountID] = struct{}{}
}

// fleetRenderChunk bounds the rows re-rendered in one hold of the projector's read lock (about
// 40 ms of work), so a query after a replay or a restore, with every row to render, holds the
// fold back in short turns rather than for the whole fleet at once.
const fleetRenderChunk = 4096

// liveFleet runs f on the live fleet state with every row up to date, under the projector's read
// lock and the cache's lock. Rows changed since the last query are re-rendered first, a chunk
// per hold of the read lock; the fold runs between chunks and may mark more, so after a bounded
// number of turns the rest is rendered in the final hold.
func (p *Projector) liveFleet(cat ledger.Catalogue, f func(fleetState)) {
	c := &p.fleet
	for turn := 0; ; turn++ {
		p.mu.RLock()
		c.mu.Lock()
		if !c.ready {
			c.rows, c.totals, c.ready = map[string]*fleetRow{}, newTotals(cat), true
			for id := range p.accounts {
				p.markDirty(id)
			}
		}
		limit := fleetRenderChunk
		if turn >= 2+len(p.ids)/fleetRenderChunk {
			limit = len(p.dirty) // bounded turns: the fold is marking rows as fast as they render
		}
		if p.refreshRows(limit) {
			func() {
				defer p.mu.RUnlock()
				defer c.mu.Unlock()
				f(fleetState{ids: p.ids, accounts: p.accounts, position: p.position, rows: c.rows, totals: &c.totals})
			}()
			return
		}
		c.mu.Unlock()
		p.mu.RUnlock()
	}
}

// refreshRows re-renders up to limit dirty rows and moves the totals by their difference; it
// reports whether none is left. Call it with the projector's read lock and the cache's lock
// (the fold changes dirty only under the write lock; fleet queries only under c.mu).
func (p *Projector) refreshRows(limit int) bool {
	c := &p.fleet
	n := 0
	for id := range p.dirty {
		if n == limit {
			return false
		}
		if old := c.rows[id]; old != nil {
			addContribution(&c.totals, old.contrib, -1)
		}
		r := rowOf(p.accounts[id])
		c.rows[id] = r
		addContribution(&c.totals, r.contrib, 1)
		delete(p.dirty, id)
		n++
	}
	p.dirty = nil // not clear(): a map keeps its buckets, and ranging over them costs as much as it once held
	return true
}

// pastFleet renders every row of a fleet state folded for as_of.
func pastFleet(st fleetState, cat ledger.Catalogue) fleetState {
	st.rows = make(map[string]*fleetRow, len(st.ids))
	t := newTotals(cat)
	for _, id := range st.ids {
		r := rowOf(st.accounts[id])
		st.rows[id] = r
		addContribution(&t, r.contrib, 1)
	}
	st.totals = &t
	return st
}
