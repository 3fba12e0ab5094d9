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

// TotalsOf renders the totals of a fleet state (summed from its rows' contributions).
func TotalsOf(st fleetState, past *Past) Totals {
	t := cloneTotals(*st.totals)
	t.OK, t.Position, t.Past = true, st.position, past
	return t
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
