package projections

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/ledger"
)

// QueryContracts is one account's PAYG contracts and their rates: NATS ledger.query.contracts,
// HTTP GET /v1/accounts/{id}/contracts.
const QueryContracts = "contracts"

// CreditTotals are credit figures summed over accounts.
type CreditTotals struct {
	// Sold is the credits of every license item ever purchased (increases included), whatever
	// its status now.
	Sold decimal.Decimal `json:"sold"`
	// Active is the pools: the credits of every active license item.
	Active    decimal.Decimal `json:"active"`
	Allocated decimal.Decimal `json:"allocated"`
	Available decimal.Decimal `json:"available"`
	Shortfall decimal.Decimal `json:"shortfall"`
}

// SourceTotals are one license source's items and credits.
type SourceTotals struct {
	Licenses       int             `json:"licenses"`
	ActiveLicenses int             `json:"active_licenses"`
	CreditsSold    decimal.Decimal `json:"credits_sold"`
	CreditsActive  decimal.Decimal `json:"credits_active"`
	Accounts       int             `json:"accounts"`
}

// FeatureTotals are one feature's allocations and billing models across accounts. Allocations
// draw on an account's one pool, not on a source, so they are summed by feature only.
type FeatureTotals struct {
	CreditsAllocated   decimal.Decimal `json:"credits_allocated"`
	AccountsAllocating int             `json:"accounts_allocating"`
	AccountsOnPayg     int             `json:"accounts_on_payg"`
}

// Totals is the fleet totals read model.
type Totals struct {
	OK       bool   `json:"ok"`
	Position uint64 `json:"position"`
	Accounts int    `json:"accounts"`
	// ByStatus counts accounts by status (active, grace, expired); InGrace and Expired repeat
	// two of them for dashboards.
	ByStatus      map[string]int           `json:"by_status"`
	InGrace       int                      `json:"in_grace"`
	Expired       int                      `json:"expired"`
	WithShortfall int                      `json:"with_shortfall"`
	ByBillingPath map[string]int           `json:"by_billing_path"`
	Credits       CreditTotals             `json:"credits"`
	BySource      map[string]SourceTotals  `json:"by_source"`
	ByFeature     map[string]FeatureTotals `json:"by_feature"`
	*Past
}

// TotalsOf renders the totals of a fleet state (summed from its rows' contributions).
func TotalsOf(st fleetState, past *Past) Totals {
	t := st.totals.clone()
	t.OK, t.Position, t.Past = true, st.position, past
	return t
}

// PaygChargeRow is one account's PAYG charges in the month, in one currency.
type PaygChargeRow struct {
	AccountID   string                  `json:"account_id"`
	Currency    string                  `json:"currency"`
	Amount      string                  `json:"amount"`
	AmountExact decimal.Decimal         `json:"amount_exact"`
	Records     int                     `json:"records"`
	Features    map[string]UsageFeature `json:"features"`
}

// PaygChargeTotal is the month's charges over every account that matches, in one currency.
type PaygChargeTotal struct {
	Currency    string          `json:"currency"`
	Amount      string          `json:"amount"`
	AmountExact decimal.Decimal `json:"amount_exact"`
	Records     int             `json:"records"`
	Accounts    int             `json:"accounts"`
}

// PaygCharges is the PAYG charges read model of one month: a page of accounts with usage in it
// and the month's totals (over every matching account, not only the page).
type PaygCharges struct {
	OK         bool              `json:"ok"`
	Position   uint64            `json:"position"`
	Month      string            `json:"month"`
	Rounding   string            `json:"rounding"`
	Accounts   []PaygChargeRow   `json:"accounts"`
	Totals     []PaygChargeTotal `json:"totals"`
	NextCursor string            `json:"next_cursor,omitempty"`
	*Past
}

// PaygChargesOf renders a month's PAYG charges. Amounts are rounded as the usage read model
// rounds them (RoundingRule): each shown amount from the exact sum it shows.
func PaygChargesOf(st fleetState, f fleetFilter, past *Past) PaygCharges {
	out := PaygCharges{OK: true, Position: st.position, Month: f.month, Rounding: RoundingRule,
		Accounts: []PaygChargeRow{}, Totals: []PaygChargeTotal{}, Past: past}
	totals := map[string]*PaygChargeTotal{}
	for _, id := range st.ids {
		if !hasPrefix(id, f.prefix) {
			continue
		}
		for _, r := range st.rows[id].charges[f.month] {
			t := totals[r.Currency]
			if t == nil {
				t = &PaygChargeTotal{Currency: r.Currency}
				totals[r.Currency] = t
			}
			t.AmountExact, t.Records, t.Accounts = t.AmountExact.Add(r.AmountExact), t.Records+r.Records, t.Accounts+1
		}
	}
	for _, t := range totals {
		t.Amount = shownMoney(t.AmountExact, t.Currency)
		out.Totals = append(out.Totals, *t)
	}
	sort.Slice(out.Totals, func(i, j int) bool { return out.Totals[i].Currency < out.Totals[j].Currency })
	out.NextCursor = paginate(st, QueryPaygCharges, f, func(a ledger.Account) bool {
		return len(st.rows[a.ID].charges[f.month]) > 0
	}, func(a ledger.Account) { out.Accounts = append(out.Accounts, st.rows[a.ID].charges[f.month]...) })
	return out
}

func hasPrefix(id, prefix string) bool { return len(id) >= len(prefix) && id[:len(prefix)] == prefix }

// ContractView is one PAYG contract and its rates.
type ContractView struct {
	ContractID string `json:"contract_id"`
	// Status is pending (purchased) or active.
	Status string `json:"status"`
	// InEffect marks the contract that prices usage now: the last one activated.
	InEffect    bool       `json:"in_effect"`
	PurchasedAt time.Time  `json:"purchased_at"`
	ActivatedAt *time.Time `json:"activated_at"`
	// Rates are the contract's own rates (feature or feature:tier -> price per unit); usage of
	// a feature without one is priced from the rate card (docs/PAYG.md).
	Rates map[string]decimal.Decimal `json:"rates"`
}

// Contracts is one account's PAYG contracts, in purchase order.
type Contracts struct {
	OK        bool           `json:"ok"`
	AccountID string         `json:"account_id"`
	Position  uint64         `json:"position"`
	Contracts []ContractView `json:"contracts"`
}

// ContractsOf renders an account's PAYG contracts; at is the moment "in effect" refers to.
func ContractsOf(a ledger.Account, position uint64, at time.Time) Contracts {
	out := Contracts{OK: true, AccountID: a.ID, Position: position, Contracts: make([]ContractView, 0, len(a.ContractOrder))}
	current, hasCurrent := a.PaygContractAt(at)
	for _, id := range a.ContractOrder {
		k := a.Contracts[id]
		v := ContractView{ContractID: k.ID, Status: "pending", PurchasedAt: k.PurchasedAt.UTC(),
			ActivatedAt: optionalTime(k.ActivatedAt), Rates: map[string]decimal.Decimal{}}
		if k.Active {
			v.Status = "active"
		}
		v.InEffect = hasCurrent && current.ID == k.ID
		for key, r := range k.Rates {
			v.Rates[key] = r
		}
		out.Contracts = append(out.Contracts, v)
	}
	return out
}

// AccountContracts is one account's row of the fleet contract list.
type AccountContracts struct {
	AccountID string         `json:"account_id"`
	Contracts []ContractView `json:"contracts"`
}

// PaygContracts is a page of accounts that hold PAYG contracts, with the contracts and rates.
type PaygContracts struct {
	OK         bool               `json:"ok"`
	Position   uint64             `json:"position"`
	Accounts   []AccountContracts `json:"accounts"`
	NextCursor string             `json:"next_cursor,omitempty"`
	*Past
}

// PaygContractsOf renders a page of the fleet contract list; active=true keeps accounts with an
// active contract, active=false those with none active.
func PaygContractsOf(st fleetState, f fleetFilter, past *Past) PaygContracts {
	out := PaygContracts{OK: true, Position: st.position, Accounts: []AccountContracts{}, Past: past}
	at := endOfTime
	if past != nil {
		at = past.AsOf
	}
	out.NextCursor = paginate(st, QueryPaygContracts, f, func(a ledger.Account) bool {
		return len(a.ContractOrder) > 0 && (f.active == nil || *f.active == a.HasActivePayg())
	}, func(a ledger.Account) {
		out.Accounts = append(out.Accounts, AccountContracts{AccountID: a.ID, Contracts: ContractsOf(a, st.position, at).Contracts})
	})
	return out
}
