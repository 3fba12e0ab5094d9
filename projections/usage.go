package projections

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// The read models' answer types live in api, shared with the Go client (ledgerclient).
type (
	UsageFeature = api.UsageFeature
	UsageTotal   = api.UsageTotal
	UsageMonth   = api.UsageMonth
	Usage        = api.Usage
)

// QueryUsage is the usage read model: NATS ledger.query.usage, HTTP
// GET /v1/accounts/{id}/usage[?month=YYYY-MM].
const QueryUsage = "usage"

// UsageMonthLayout is the format of the month parameter and of UsageMonth.Month.
const UsageMonthLayout = "2006-01"

// RoundingRule describes how the usage read model shows amounts; it is part of every answer.
const RoundingRule = "amount fields are rounded half-even (banker's rounding) to the currency's minor unit, " +
	"each from the exact sum it shows; amount_exact fields keep full precision and add up exactly"

// ParseUsageMonth checks a month parameter (YYYY-MM); empty means every month.
func ParseUsageMonth(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	t, err := time.Parse(UsageMonthLayout, s)
	if err != nil || len(s) != len(UsageMonthLayout) {
		return "", ledger.Reject(ledger.CodeInvalidArgument, "month must be YYYY-MM, got %q", s)
	}
	return t.Format(UsageMonthLayout), nil
}

// UsageOf renders the usage read model from an account state. Records are bucketed by the UTC
// calendar month of occurred_at. Sums are exact; only the shown amount fields are rounded.
func UsageOf(a ledger.Account, position uint64, month string) (Usage, error) {
	month, err := ParseUsageMonth(month)
	if err != nil {
		return Usage{}, err
	}
	type bucket struct{ month, currency string }
	exact := map[bucket]*UsageMonth{}
	for _, u := range a.Usage {
		m := u.OccurredAt.UTC().Format(UsageMonthLayout)
		if month != "" && m != month {
			continue
		}
		b := bucket{m, u.Currency}
		um := exact[b]
		if um == nil {
			um = &UsageMonth{Month: m, Currency: u.Currency, Features: map[string]UsageFeature{}}
			exact[b] = um
		}
		f := um.Features[u.Feature]
		f.Unit = u.Unit
		f.Quantity = f.Quantity.Add(u.Quantity)
		f.AmountExact = f.AmountExact.Add(u.Amount)
		f.Records++
		um.Features[u.Feature] = f
		um.Total.AmountExact = um.Total.AmountExact.Add(u.Amount)
		um.Total.Records++
	}
	out := Usage{OK: true, AccountID: a.ID, Position: position, Rounding: RoundingRule, Months: make([]UsageMonth, 0, len(exact))}
	for _, um := range exact {
		for id, f := range um.Features {
			f.Amount = shownMoney(f.AmountExact, um.Currency)
			um.Features[id] = f
		}
		um.Total.Amount = shownMoney(um.Total.AmountExact, um.Currency)
		out.Months = append(out.Months, *um)
	}
	if month != "" && len(out.Months) == 0 {
		cur := ledger.DefaultRateCard().Currency
		out.Months = append(out.Months, UsageMonth{Month: month, Currency: cur, Features: map[string]UsageFeature{},
			Total: UsageTotal{Amount: shownMoney(decimal.Zero, cur), AmountExact: decimal.Zero}})
	}
	sort.Slice(out.Months, func(i, j int) bool {
		if out.Months[i].Month != out.Months[j].Month {
			return out.Months[i].Month < out.Months[j].Month
		}
		return out.Months[i].Currency < out.Months[j].Currency
	})
	return out, nil
}

// shownMoney renders an amount rounded half-even to the currency's minor unit with every minor
// digit written ("5.00", not "5"), as an invoice shows it.
func shownMoney(amount decimal.Decimal, currency string) string {
	return ledger.RoundMoney(amount, currency).StringFixedBank(ledger.MinorUnitDigits(currency))
}
