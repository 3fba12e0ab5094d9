package projections_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
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

// pagedFleet is a projector fed from an in-memory stream, with queries that answer as_of.
type pagedFleet struct {
	t       *testing.T
	stream  *memStream
	proj    *projections.Projector
	q       *projections.Queries
	version map[string]uint64
	source  map[string]string
	at      time.Time
}

func newPagedFleet(t *testing.T) *pagedFleet {
	f := &pagedFleet{t: t, stream: &memStream{}, proj: projections.NewProjector(zerolog.Nop()), version: map[string]uint64{},
		source: map[string]string{}, at: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	q, err := projections.NewQueries(f.proj, ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	q.UseHistory(f.stream)
	f.q = q
	return f
}

func (f *pagedFleet) add(account string, p events.Payload) {
	f.at = f.at.Add(time.Second)
	f.addAt(account, f.at, p)
}

// addAt appends an event stamped at, whatever the events before it say (another node's clock).
func (f *pagedFleet) addAt(account string, at time.Time, p events.Payload) {
	f.version[account]++
	pos := uint64(len(f.stream.recs) + 1)
	data := storedAt(f.t, account, f.version[account], at, p)
	f.stream.recs = append(f.stream.recs, ledger.Record{AccountID: account, Position: pos, Data: data})
	f.proj.Apply(pos, account, data)
}

// open creates an account with a license of the given source and a PAYG contract.
func (f *pagedFleet) open(account, source string) {
	f.source[account] = source
	f.add(account, events.LicensePurchased{LicenseID: account + "-L", Source: source, Credits: decimal.NewFromInt(10),
		TermMonths: 12, PurchasedAt: f.at, ContractStart: f.at, ExpiresAt: f.at.AddDate(1, 0, 0)})
	f.add(account, events.PaygContractPurchased{ContractID: account + "-P", PurchasedAt: f.at})
}

func (f *pagedFleet) page(name string, r projections.QueryRequest) ([]string, string, error) {
	out, err := f.q.Answer(context.Background(), name, r)
	if err != nil {
		return nil, "", err
	}
	var ids []string
	switch p := out.(type) {
	case projections.AccountList:
		for _, a := range p.Accounts {
			ids = append(ids, a.AccountID)
		}
		return ids, p.NextCursor, nil
	case projections.PaygContracts:
		for _, a := range p.Accounts {
			ids = append(ids, a.AccountID)
		}
		return ids, p.NextCursor, nil
	}
	f.t.Fatalf("no pages in %T", out)
	return nil, "", nil
}

// Paging through a list while accounts are added between pages returns every account that was
// there from the start exactly once, in id order, and each account added later exactly when
// its id is past the page already returned (keyset paging); changes to accounts already listed
// move nothing.
func TestFleetPagesEveryAccountOnceWhileAccountsAreAdded(t *testing.T) {
	t.Parallel()
	sources := []string{ledger.SourceSales, ledger.SourceAWS, ledger.SourceAzure}
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		f := newPagedFleet(t)
		newID := func() string {
			return fmt.Sprintf("%c%c-%d", 'a'+rune(rng.IntN(3)), 'a'+rune(rng.IntN(3)), rng.IntN(1000))
		}
		for range 30 + rng.IntN(30) {
			if id := newID(); f.version[id] == 0 {
				f.open(id, sources[rng.IntN(3)])
			}
		}
		name, r := projections.QueryAccounts, projections.QueryRequest{Limit: 1 + rng.IntN(6)}
		switch rng.IntN(4) {
		case 1:
			r.Prefix = "ab"
		case 2:
			r.Source = sources[rng.IntN(3)]
		case 3:
			name = projections.QueryPaygContracts
		}
		matches := func(id string) bool {
			return len(id) >= len(r.Prefix) && id[:len(r.Prefix)] == r.Prefix && (r.Source == "" || f.source[id] == r.Source)
		}
		want := map[string]bool{}
		for id := range f.version {
			if matches(id) {
				want[id] = true
			}
		}
		seen, last := map[string]int{}, ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 1000, "the pages end")
			ids, next, err := f.page(name, r)
			require.NoError(t, err)
			for _, id := range ids {
				require.Greater(t, id, last, "seed %d: ids in order", seed)
				seen[id]++
				last = id
			}
			if next == "" {
				break
			}
			r.Cursor = next
			for range rng.IntN(4) { // accounts opened between pages, before and after the cursor
				id := newID()
				if f.version[id] > 0 {
					f.add(id, events.PaygContractPurchased{ContractID: fmt.Sprintf("%s-P%d", id, f.version[id]), PurchasedAt: f.at})
					continue
				}
				f.open(id, sources[rng.IntN(3)])
				if matches(id) && id > last {
					want[id] = true
				}
			}
		}
		for id := range want {
			assert.Equal(t, 1, seen[id], "seed %d: %s listed once (%s %+v)", seed, id, name, r)
		}
		for id := range seen {
			assert.True(t, want[id], "seed %d: %s listed but not expected", seed, id)
		}
	}
}

func isInvalidArgument(err error) bool {
	var le *ledger.Error
	return errors.As(err, &le) && le.Code == ledger.CodeInvalidArgument
}

// A cursor resumes only the list it came from: with another query, other filters or another
// as_of, or forged, it is invalid_argument, never a page of some other list. Only the page size
// may change between pages.
func TestFleetCursorFromOtherFiltersIsRefused(t *testing.T) {
	t.Parallel()
	f := newPagedFleet(t)
	for i := range 6 {
		f.open(fmt.Sprintf("a-%d", i), ledger.SourceSales)
		f.open(fmt.Sprintf("b-%d", i), ledger.SourceAWS)
	}
	asOf := f.at.Format(time.RFC3339Nano)
	yes := true
	first := projections.QueryRequest{Prefix: "a", Limit: 2}
	_, cursor, err := f.page(projections.QueryAccounts, first)
	require.NoError(t, err)
	require.NotEmpty(t, cursor)
	_, asOfCursor, err := f.page(projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Limit: 2, AsOf: asOf})
	require.NoError(t, err)
	require.NotEmpty(t, asOfCursor)

	ids, _, err := f.page(projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Limit: 3, Cursor: cursor})
	require.NoError(t, err, "the same filters with another page size")
	assert.Equal(t, []string{"a-2", "a-3", "a-4"}, ids)
	ids, _, err = f.page(projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Limit: 2, AsOf: asOf, Cursor: asOfCursor})
	require.NoError(t, err)
	assert.Equal(t, []string{"a-2", "a-3"}, ids)

	forged := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct {
		what string
		name string
		r    projections.QueryRequest
	}{
		{"another prefix", projections.QueryAccounts, projections.QueryRequest{Prefix: "b", Cursor: cursor}},
		{"no prefix", projections.QueryAccounts, projections.QueryRequest{Cursor: cursor}},
		{"a filter added", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Source: ledger.SourceSales, Cursor: cursor}},
		{"shortfall added", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Shortfall: &yes, Cursor: cursor}},
		{"as_of added", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", AsOf: asOf, Cursor: cursor}},
		{"as_of dropped", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Cursor: asOfCursor}},
		{"another as_of", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", AsOf: f.at.Add(-time.Second).Format(time.RFC3339), Cursor: asOfCursor}},
		{"another query", projections.QueryPaygContracts, projections.QueryRequest{Prefix: "a", Cursor: cursor}},
		{"not base64", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Cursor: "!!"}},
		{"a v1 cursor", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Cursor: forged("v1:accounts:a-1")}},
		{"no key", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Cursor: forged("v2:accounts:a-1")}},
		{"a made-up key", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Cursor: forged("v2:accounts:0011223344556677:a-1")}},
		{"truncated", projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Cursor: cursor[:len(cursor)-3]}},
	} {
		_, _, err := f.page(c.name, c.r)
		assert.True(t, isInvalidArgument(err), "%s: %v", c.what, err)
	}
	// An as_of filter written in another zone is the same instant, hence the same list.
	other := f.at.In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano)
	_, _, err = f.page(projections.QueryAccounts, projections.QueryRequest{Prefix: "a", Limit: 2, AsOf: other, Cursor: asOfCursor})
	assert.NoError(t, err)
}

// Fleet queries answered while the fold runs, with more rows changed between two queries than
// one render chunk holds, are each a consistent picture of one position: the totals and the
// last page's position agree with the events up to the position they report.
func TestFleetAnswersWhileFoldingAreConsistent(t *testing.T) {
	t.Parallel()
	const events_, accounts = 10_000, 4_500
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	data := make([][]byte, events_)
	ids := make([]string, events_)
	for i := range events_ {
		ids[i] = fmt.Sprintf("acct-%05d", i%accounts)
		data[i] = storedAt(t, ids[i], uint64(i/accounts+1), now, events.LicensePurchased{LicenseID: fmt.Sprintf("L%d", i),
			Source: ledger.SourceSales, Credits: decimal.NewFromInt(1), TermMonths: 12, PurchasedAt: now, ContractStart: now, ExpiresAt: now.AddDate(1, 0, 0)})
	}
	p := projections.NewProjector(zerolog.Nop())
	q, err := projections.NewQueries(p, ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range events_ {
			p.Apply(uint64(i+1), ids[i], data[i])
		}
	}()
	check := func() bool {
		out, err := q.Answer(context.Background(), projections.QueryTotals, projections.QueryRequest{})
		require.NoError(t, err)
		tot := out.(projections.Totals)
		n := int(tot.Position)
		assert.Equal(t, int64(n), tot.Credits.Sold.IntPart(), "one credit sold per event up to the position")
		assert.Equal(t, min(n, accounts), tot.Accounts, "the accounts up to the position")
		assert.Equal(t, n, tot.BySource[ledger.SourceSales].Licenses)
		return n == events_
	}
	for range 100_000 {
		select {
		case <-done:
			assert.True(t, check(), "every event in the end")
			return
		default:
			check()
		}
	}
	<-done
	assert.True(t, check())
}

// Nodes of a cluster stamp their appends with their own clocks, so an event of one account may
// follow a later-stamped one of another in the stream. The fleet as of T still holds, for every
// account, exactly what that account's own as_of answers: its events up to its first one after
// T, not the stream up to the first event after T.
func TestFleetAsOfIsEachAccountsAsOfWhenClocksDisagree(t *testing.T) {
	t.Parallel()
	f := newPagedFleet(t)
	t0 := f.at
	buy := func(id string, credits int64, at time.Time) events.Payload {
		return events.LicensePurchased{LicenseID: id, Source: ledger.SourceSales, Credits: decimal.NewFromInt(credits),
			TermMonths: 12, AutoRenew: true, PurchasedAt: at, ContractStart: at, ExpiresAt: at.AddDate(1, 0, 0)}
	}
	f.addAt("a", t0.Add(10*time.Millisecond), buy("A1", 100, t0))
	f.addAt("b", t0.Add(4*time.Millisecond), buy("B1", 7, t0)) // a node whose clock is behind
	f.addAt("a", t0.Add(11*time.Millisecond), events.LicenseActivated{LicenseID: "A1", ActivatedAt: t0})
	f.addAt("b", t0.Add(6*time.Millisecond), events.LicenseActivated{LicenseID: "B1", ActivatedAt: t0})
	f.addAt("c", t0.Add(20*time.Millisecond), buy("C1", 3, t0))
	f.addAt("b", t0.Add(2*time.Hour), buy("B2", 1000, t0)) // far later: ends the fold
	ctx := context.Background()
	for _, ms := range []int{3, 4, 5, 6, 9, 10, 11, 12, 20, 21} {
		at := t0.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano)
		out, err := f.q.Answer(ctx, projections.QueryTotals, projections.QueryRequest{AsOf: at})
		require.NoError(t, err)
		tot := out.(projections.Totals)
		list, err := f.q.Answer(ctx, projections.QueryAccounts, projections.QueryRequest{AsOf: at})
		require.NoError(t, err)
		sold, active, accounts := decimal.Zero, decimal.Zero, 0
		var listed []string
		for _, id := range []string{"a", "b", "c"} {
			b, err := f.q.Answer(ctx, projections.QueryBalance, projections.QueryRequest{AccountID: id, AsOf: at})
			if isNotFound(err) {
				continue
			}
			require.NoError(t, err)
			accounts++
			listed = append(listed, id)
			active = active.Add(b.(projections.PastBalance).TotalCredits)
			l, err := f.q.Answer(ctx, projections.QueryLicenses, projections.QueryRequest{AccountID: id, AsOf: at})
			require.NoError(t, err)
			for _, item := range l.(projections.PastLicenses).Licenses.Licenses {
				sold = sold.Add(item.Credits)
			}
		}
		assert.Equal(t, accounts, tot.Accounts, "as of +%dms", ms)
		assert.True(t, sold.Equal(tot.Credits.Sold), "as of +%dms: sold %s, the accounts say %s", ms, tot.Credits.Sold, sold)
		assert.True(t, active.Equal(tot.Credits.Active), "as of +%dms: active %s, the accounts say %s", ms, tot.Credits.Active, active)
		var ids []string
		for _, a := range list.(projections.AccountList).Accounts {
			ids = append(ids, a.AccountID)
		}
		assert.Equal(t, listed, ids, "as of +%dms", ms)
	}
}

func isNotFound(err error) bool {
	var le *ledger.Error
	return errors.As(err, &le) && le.Code == ledger.CodeNotFound
}
