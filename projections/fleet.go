package projections

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// The fleet read models' answer types live in api, shared with the Go client (ledgerclient).
type (
	AccountSummary   = api.AccountSummary
	AccountList      = api.AccountList
	CreditTotals     = api.CreditTotals
	SourceTotals     = api.SourceTotals
	FeatureTotals    = api.FeatureTotals
	Totals           = api.Totals
	PaygChargeRow    = api.PaygChargeRow
	PaygChargeTotal  = api.PaygChargeTotal
	PaygCharges      = api.PaygCharges
	ContractView     = api.ContractView
	Contracts        = api.Contracts
	AccountContracts = api.AccountContracts
	PaygContracts    = api.PaygContracts
	Past             = api.Past
)

// Fleet query names: read models across accounts. NATS ledger.query.<name>; HTTP
// GET /v1/accounts (accounts), /v1/totals, /v1/payg/charges, /v1/payg/contracts.
const (
	QueryAccounts      = "accounts"
	QueryTotals        = "totals"
	QueryPaygCharges   = "payg_charges"
	QueryPaygContracts = "payg_contracts"
)

// Page bounds of the paginated fleet queries.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// FleetQueries are the fleet read models, in the order the services register them.
var FleetQueries = []string{QueryAccounts, QueryTotals, QueryPaygCharges, QueryPaygContracts}

func isFleetQuery(name string) bool {
	for _, n := range FleetQueries {
		if n == name {
			return true
		}
	}
	return false
}

// fleetState is every account at one position: the live projection under its read lock, or a
// fold of the stream up to an as_of time.
type fleetState struct {
	ids      []string // sorted
	accounts map[string]ledger.Account
	position uint64
	// rows and totals are rendered from accounts: cached for the live state (fleet_cache.go),
	// rendered at once for a past one.
	rows   map[string]*fleetRow
	totals *Totals
}

func insertSorted(ids []string, id string) []string {
	i := sort.SearchStrings(ids, id)
	ids = append(ids, "")
	copy(ids[i+1:], ids[i:])
	ids[i] = id
	return ids
}

func sortedIDs(m map[string]ledger.Account) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// fleetFilter is a parsed fleet query: the page and the filters that apply to its query.
type fleetFilter struct {
	after          string // cursor: the last account id of the previous page
	limit          int
	prefix         string
	status         string
	billingPath    string
	source         string
	shortfall      *bool
	expiringBefore time.Time
	active         *bool
	month          string
	asOf           string // as_of, normalised (UTC, RFC 3339): a cursor is bound to it too
}

// cursorPrefix versions the opaque cursor. A cursor names its query, the last account id of its
// page and a check (cursorCheck) over the filters it was issued under and that id, so a cursor
// passed with another query, other filters or another as_of, or a damaged one, is refused
// rather than answered with a page of some other list. (v1 cursors named only the query.)
const cursorPrefix = "v2:"

// EncodeCursor makes the opaque cursor that resumes a query, without filters, after an account id.
func EncodeCursor(query, afterID string) string { return cursorOf(query, fleetFilter{}, afterID) }

func cursorOf(query string, f fleetFilter, afterID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + query + ":" + cursorCheck(f, afterID) + ":" + afterID))
}

// cursorCheck identifies the filters of a fleet query (not its page size) and the account id a
// page ends at. It is a check against mistakes, not a secret: the lists hold nothing a caller
// may not read, and a cursor made by hand only starts a page at an id of the caller's choosing.
func cursorCheck(f fleetFilter, afterID string) string {
	b := func(p *bool) string {
		if p == nil {
			return ""
		}
		return strconv.FormatBool(*p)
	}
	exp := ""
	if !f.expiringBefore.IsZero() {
		exp = f.expiringBefore.UTC().Format(time.RFC3339Nano)
	}
	h := sha256.Sum256([]byte(strings.Join([]string{f.prefix, f.status, f.billingPath, f.source, b(f.shortfall),
		exp, b(f.active), f.month, f.asOf, afterID}, "\x00")))
	return hex.EncodeToString(h[:8])
}

func decodeCursor(query string, f fleetFilter, cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	want := cursorPrefix + query + ":"
	if err != nil || !strings.HasPrefix(string(b), want) {
		return "", ledger.Reject(ledger.CodeInvalidArgument, "cursor is not a next_cursor of the %s query", query)
	}
	key, after, ok := strings.Cut(string(b[len(want):]), ":")
	if !ok || !ledger.ValidID(after) {
		return "", ledger.Reject(ledger.CodeInvalidArgument, "cursor is not a next_cursor of the %s query", query)
	}
	if key != cursorCheck(f, after) {
		return "", ledger.Reject(ledger.CodeInvalidArgument,
			"cursor was issued for other filters or another as_of: pass it with the filters of the page it came from")
	}
	return after, nil
}

// parseFleet checks a fleet query's parameters.
func parseFleet(name string, r QueryRequest) (fleetFilter, error) {
	f := fleetFilter{limit: r.Limit, prefix: r.Prefix, status: r.Status, billingPath: r.BillingPath,
		source: r.Source, shortfall: r.Shortfall, active: r.Active}
	bad := func(format string, args ...any) (fleetFilter, error) {
		return f, ledger.Reject(ledger.CodeInvalidArgument, format, args...)
	}
	if r.AccountID != "" {
		return bad("the %s query is across accounts: account_id does not apply (use prefix)", name)
	}
	switch {
	case f.limit == 0:
		f.limit = DefaultPageLimit
	case f.limit < 0 || f.limit > MaxPageLimit:
		return bad("limit must be 1-%d", MaxPageLimit)
	}
	if f.prefix != "" && !ledger.ValidID(f.prefix) {
		return bad("prefix must be 1-64 characters of A-Za-z0-9_-")
	}
	if !oneOfOrEmpty(f.status, ledger.AccountStatusActive, ledger.AccountStatusGrace, ledger.AccountStatusExpired) {
		return bad("status must be active, grace or expired")
	}
	if !oneOfOrEmpty(f.billingPath, ledger.BillingMarketplace, ledger.BillingAnnual, ledger.BillingNone) {
		return bad("billing_path must be marketplace, annual or none")
	}
	if !oneOfOrEmpty(f.source, ledger.SourceSales, ledger.SourceAWS, ledger.SourceAzure) {
		return bad("source must be sales, aws_marketplace or azure_marketplace")
	}
	if r.ExpiringBefore != "" {
		t, err := time.Parse(time.RFC3339Nano, r.ExpiringBefore)
		if err != nil {
			return bad("expiring_before must be an RFC 3339 time")
		}
		f.expiringBefore = t
	}
	month, err := ParseUsageMonth(r.Month)
	if err != nil {
		return f, err
	}
	f.month = month
	if name == QueryPaygCharges && month == "" {
		return bad("month (YYYY-MM) is required")
	}
	if r.AsOf != "" {
		at, err := parseAsOf(r.AsOf)
		if err != nil {
			return f, err
		}
		f.asOf = at.UTC().Format(time.RFC3339Nano)
	}
	if err := checkApplies(name, f, r); err != nil {
		return f, err
	}
	if r.Cursor != "" { // last: the cursor is checked against every filter
		after, err := decodeCursor(name, f, r.Cursor)
		if err != nil {
			return f, err
		}
		f.after = after
	}
	return f, nil
}

// checkApplies refuses a filter the query does not have, rather than silently ignoring it.
func checkApplies(name string, f fleetFilter, r QueryRequest) error {
	accounts := name == QueryAccounts
	for _, c := range []struct {
		set  bool
		what string
		ok   bool
	}{
		{r.Cursor != "" || r.Limit != 0 || f.prefix != "", "cursor, limit and prefix", name != QueryTotals},
		{f.status != "" || f.billingPath != "" || f.source != "" || f.shortfall != nil || !f.expiringBefore.IsZero(),
			"status, billing_path, source, shortfall and expiring_before", accounts},
		{f.active != nil, "active", name == QueryPaygContracts},
		{f.month != "", "month", name == QueryPaygCharges},
	} {
		if c.set && !c.ok {
			return ledger.Reject(ledger.CodeInvalidArgument, "%s do not apply to the %s query", c.what, name)
		}
	}
	return nil
}

func oneOfOrEmpty(v string, allowed ...string) bool {
	if v == "" {
		return true
	}
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// paginate calls emit for up to f.limit accounts after the cursor, in id order, that have the
// prefix and pass keep; it returns the cursor of the next page ("" when there is none).
func paginate(st fleetState, query string, f fleetFilter, keep func(ledger.Account) bool, emit func(ledger.Account)) string {
	start := max(f.after, f.prefix)
	i := sort.SearchStrings(st.ids, start)
	if i < len(st.ids) && st.ids[i] == f.after {
		i++
	}
	n, last := 0, ""
	for ; i < len(st.ids); i++ {
		id := st.ids[i]
		if !strings.HasPrefix(id, f.prefix) {
			break // ids are sorted: the prefix's range has ended
		}
		a := st.accounts[id]
		if !keep(a) {
			continue
		}
		if n == f.limit {
			return cursorOf(query, f, last)
		}
		emit(a)
		n, last = n+1, id
	}
	return ""
}

// renderFleet renders one fleet read model from a fleet state.
func renderFleet(name string, st fleetState, f fleetFilter, past *Past) (any, error) {
	switch name {
	case QueryAccounts:
		return AccountsOf(st, f, past), nil
	case QueryTotals:
		return TotalsOf(st, past), nil
	case QueryPaygCharges:
		return PaygChargesOf(st, f, past), nil
	case QueryPaygContracts:
		return PaygContractsOf(st, f, past), nil
	default:
		return nil, ledger.Reject(ledger.CodeInvalidArgument, "unknown query %q", name)
	}
}

// SummaryOf renders one account's row of the account list.
func SummaryOf(a ledger.Account) AccountSummary {
	s := AccountSummary{
		AccountID: a.ID, Version: a.Version, Status: a.Status(), BillingPath: a.BillingPath(), Sources: []string{},
		TotalCredits: a.TotalCredits(), AllocatedCredits: a.AllocatedCredits(), AvailableCredits: a.AvailableCredits(),
		Shortfall: a.Shortfall(), GraceUntil: optionalTime(a.GraceUntil), ExpiredAt: optionalTime(a.ExpiredAt),
	}
	seen := map[string]bool{}
	var next time.Time
	for _, id := range a.LicenseOrder {
		l := a.Licenses[id]
		if !seen[l.Source] {
			seen[l.Source] = true
			s.Sources = append(s.Sources, l.Source)
		}
		if l.Status == ledger.StatusActive && !l.AutoRenew && (next.IsZero() || l.ExpiresAt.Before(next)) {
			next = l.ExpiresAt
		}
	}
	sort.Strings(s.Sources)
	s.NextExpiryAt = optionalTime(next)
	if k, ok := a.PaygContractAt(endOfTime); ok {
		id := k.ID
		s.PaygContractID = &id
	}
	return s
}

// endOfTime is later than any event: the contract "in effect" now is the last one activated.
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func (f fleetFilter) keepSummary(s AccountSummary) bool {
	switch {
	case f.status != "" && s.Status != f.status,
		f.billingPath != "" && s.BillingPath != f.billingPath,
		f.source != "" && !containsString(s.Sources, f.source),
		f.shortfall != nil && *f.shortfall != s.Shortfall.IsPositive(),
		!f.expiringBefore.IsZero() && (s.NextExpiryAt == nil || !s.NextExpiryAt.Before(f.expiringBefore)):
		return false
	}
	return true
}

func containsString(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// AccountsOf renders a page of the account list.
func AccountsOf(st fleetState, f fleetFilter, past *Past) AccountList {
	out := AccountList{OK: true, Position: st.position, Accounts: []AccountSummary{}, Past: past}
	out.NextCursor = paginate(st, QueryAccounts, f, func(a ledger.Account) bool {
		return f.keepSummary(st.rows[a.ID].summary)
	}, func(a ledger.Account) { out.Accounts = append(out.Accounts, st.rows[a.ID].summary) })
	return out
}
