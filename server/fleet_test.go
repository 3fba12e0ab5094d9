package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
)

// fleetSeed gives the ledger four accounts of different shapes and returns the last position
// and the time the seeding ended (before the clock moved on):
//
//	f-a  sales 1000 (renews) + sales 250 (does not), 1100 allocated; after day 35: shortfall 100
//	f-b  AWS 300 pending, Azure 200 active; a PAYG contract with a rate, file_security on PAYG,
//	     usage in January 2026
//	f-c  linked a marketplace subscription that then moved to f-d: in grace
//	f-d  holds the subscription
func fleetSeed(t *testing.T, l *testledger.Ledger) (uint64, time.Time) {
	t.Helper()
	ctx := pgCtx(t)
	buy := func(account, id, source, credits string, term int, renew bool) {
		_, err := l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: pgMeta(account), LicenseID: id, Source: source,
			Credits: commands.MustAmount(credits), TermMonths: &term, AutoRenew: &renew})
		require.NoError(t, err)
	}
	activate := func(account, id string) {
		_, err := l.Client.ActivateLicense(ctx, commands.ActivateLicense{Meta: pgMeta(account), LicenseID: id})
		require.NoError(t, err)
	}
	buy("f-a", "FA-1", "sales", "1000", 12, true)
	activate("f-a", "FA-1")
	buy("f-a", "FA-2", "sales", "250", 1, false)
	activate("f-a", "FA-2")
	_, err := l.Client.AllocateCredits(ctx, commands.AllocateCredits{Meta: pgMeta("f-a"), Feature: "container_security", Credits: commands.MustAmount("1100")})
	require.NoError(t, err)
	buy("f-b", "FB-AWS", "aws_marketplace", "300", 12, true)
	buy("f-b", "FB-AZ", "azure_marketplace", "200", 12, true)
	activate("f-b", "FB-AZ")
	pgPayg(t, l, "f-b", map[string]string{"file_security": "0.5"}, "file_security")
	_, err = l.Client.RecordUsage(ctx, pgUsage("f-b", "u1", "file_security", "3.01", "gb", l.Clock.Now()))
	require.NoError(t, err)
	_, err = l.Client.LinkSubscription(ctx, pgLink("f-c", "sub-f"))
	require.NoError(t, err)
	l.Clock.Advance(time.Minute)
	last, err := l.Client.LinkSubscription(ctx, pgLink("f-d", "sub-f"))
	require.NoError(t, err)
	return last.Position, l.Clock.Now()
}

// fleetQuery asks a fleet query over NATS and the same over HTTP, checks both answer the same
// object, and decodes it into out.
func fleetQuery(t *testing.T, l *testledger.Ledger, name string, params map[string]string, out any) {
	t.Helper()
	body := map[string]any{}
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
		switch k {
		case "limit", "min_position":
			var n int
			require.NoError(t, json.Unmarshal([]byte(v), &n))
			body[k] = n
		case "shortfall", "active":
			body[k] = v == "true"
		default:
			body[k] = v
		}
	}
	raw := pgQuery(t, l, name, body, out)
	status, got := pgGet(t, l, projectionsRoute(name)+"?"+q.Encode())
	require.Equal(t, http.StatusOK, status, "%s", got)
	assert.JSONEq(t, string(raw), string(got), "NATS and HTTP answer %s the same", name)
}

func projectionsRoute(name string) string { return projections.FleetRoutes[name][len("GET "):] }

func TestFleetReadModels(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	pos, seeded := fleetSeed(t, l)
	p := itoa(pos)

	var all projections.AccountList
	fleetQuery(t, l, projections.QueryAccounts, map[string]string{"min_position": p}, &all)
	require.Len(t, all.Accounts, 4)
	assert.Equal(t, pos, all.Position)
	ids := []string{}
	for _, a := range all.Accounts {
		ids = append(ids, a.AccountID)
	}
	assert.Equal(t, []string{"f-a", "f-b", "f-c", "f-d"}, ids, "in account id order")
	assert.Empty(t, all.NextCursor)
	b := all.Accounts[1]
	assert.Equal(t, []string{"aws_marketplace", "azure_marketplace"}, b.Sources)
	require.NotNil(t, b.PaygContractID)
	assert.Equal(t, "f-b-P", *b.PaygContractID)
	require.NotNil(t, all.Accounts[0].NextExpiryAt, "FA-2 will lapse")
	assert.Equal(t, "2026-02-15", all.Accounts[0].NextExpiryAt.Format("2006-01-02"))

	// Paging: two by two, the cursor resumes where the page ended.
	var page1, page2 projections.AccountList
	fleetQuery(t, l, projections.QueryAccounts, map[string]string{"limit": "2"}, &page1)
	require.Len(t, page1.Accounts, 2)
	require.NotEmpty(t, page1.NextCursor)
	fleetQuery(t, l, projections.QueryAccounts, map[string]string{"limit": "2", "cursor": page1.NextCursor}, &page2)
	require.Len(t, page2.Accounts, 2)
	assert.Equal(t, "f-c", page2.Accounts[0].AccountID)
	assert.Empty(t, page2.NextCursor, "no third page")

	// Filters.
	for _, c := range []struct {
		params map[string]string
		want   []string
	}{
		{map[string]string{"status": "grace"}, []string{"f-c"}},
		{map[string]string{"billing_path": "marketplace"}, []string{"f-d"}},
		{map[string]string{"billing_path": "annual"}, []string{"f-a", "f-b"}},
		{map[string]string{"source": "aws_marketplace"}, []string{"f-b"}},
		{map[string]string{"prefix": "f-c"}, []string{"f-c"}},
		{map[string]string{"prefix": "zz"}, []string{}},
		{map[string]string{"expiring_before": "2026-03-01T00:00:00Z"}, []string{"f-a"}},
		{map[string]string{"shortfall": "true"}, []string{}},
	} {
		var got projections.AccountList
		fleetQuery(t, l, projections.QueryAccounts, c.params, &got)
		ids := []string{}
		for _, a := range got.Accounts {
			ids = append(ids, a.AccountID)
		}
		assert.Equal(t, c.want, ids, "%v", c.params)
	}

	var tot projections.Totals
	fleetQuery(t, l, projections.QueryTotals, nil, &tot)
	assert.Equal(t, 4, tot.Accounts)
	assert.Equal(t, 1, tot.InGrace)
	assert.Equal(t, 0, tot.Expired)
	assertDec(t, "1750", tot.Credits.Sold, "every item purchased")
	assertDec(t, "1450", tot.Credits.Active)
	assertDec(t, "1100", tot.Credits.Allocated)
	assertDec(t, "350", tot.Credits.Available)
	assertDec(t, "300", tot.BySource[ledger.SourceAWS].CreditsSold)
	assertDec(t, "0", tot.BySource[ledger.SourceAWS].CreditsActive, "pending")
	assert.Equal(t, 2, tot.BySource[ledger.SourceSales].ActiveLicenses)
	assertDec(t, "1100", tot.ByFeature["container_security"].CreditsAllocated)
	assert.Equal(t, 1, tot.ByFeature["file_security"].AccountsOnPayg)

	var ch projections.PaygCharges
	fleetQuery(t, l, projections.QueryPaygCharges, map[string]string{"month": "2026-01"}, &ch)
	require.Len(t, ch.Accounts, 1)
	assert.Equal(t, "f-b", ch.Accounts[0].AccountID)
	assert.Equal(t, "1.50", ch.Accounts[0].Amount, "0.5 x 3.01 = 1.505, half-even to the cent")
	assertDec(t, "1.505", ch.Accounts[0].AmountExact)
	require.Len(t, ch.Totals, 1)
	assert.Equal(t, "1.50", ch.Totals[0].Amount)
	assert.Equal(t, 1, ch.Totals[0].Accounts)
	fleetQuery(t, l, projections.QueryPaygCharges, map[string]string{"month": "2026-02"}, &ch)
	assert.Empty(t, ch.Accounts)
	assert.Empty(t, ch.Totals)

	var pc projections.PaygContracts
	fleetQuery(t, l, projections.QueryPaygContracts, map[string]string{"active": "true"}, &pc)
	require.Len(t, pc.Accounts, 1)
	require.Len(t, pc.Accounts[0].Contracts, 1)
	k := pc.Accounts[0].Contracts[0]
	assert.Equal(t, "active", k.Status)
	assert.True(t, k.InEffect)
	assertDec(t, "0.5", k.Rates["file_security"])

	var one projections.Contracts
	raw := pgQuery(t, l, projections.QueryContracts, map[string]any{"account_id": "f-b"}, &one)
	status, body := pgGet(t, l, "/v1/accounts/f-b/contracts")
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, string(raw), string(body))
	assert.Equal(t, []projections.ContractView{k}, one.Contracts)

	// Time moves on: FA-2 lapses under f-a's allocation (a shortfall), f-c's grace ends.
	l.Clock.Advance(35 * 24 * time.Hour)
	pgExpire(t, l, "f-c")
	require.Eventually(t, func() bool {
		l.Sweep()
		var s projections.AccountList
		pgQuery(t, l, projections.QueryAccounts, map[string]any{"shortfall": true}, &s)
		return len(s.Accounts) == 1 && s.Accounts[0].AccountID == "f-a"
	}, pgWait, 10*time.Millisecond, "f-a has a shortfall")
	fleetQuery(t, l, projections.QueryTotals, nil, &tot)
	assert.Equal(t, 1, tot.Expired)
	assert.Equal(t, 1, tot.WithShortfall)
	assertDec(t, "100", tot.Credits.Shortfall)

	// as_of: the fleet as it was when the seeding ended.
	var then projections.Totals
	fleetQuery(t, l, projections.QueryTotals, map[string]string{"as_of": seeded.Format(time.RFC3339Nano)}, &then)
	require.NotNil(t, then.Past)
	assert.Equal(t, 1, then.InGrace)
	assert.Equal(t, 0, then.WithShortfall)
	assert.Equal(t, pos, then.Position)
	var acctThen projections.PastAccount
	pgQuery(t, l, projections.QueryAccount, map[string]any{"account_id": "f-c", "as_of": seeded.Format(time.RFC3339Nano)}, &acctThen)
	assert.Equal(t, ledger.AccountStatusGrace, acctThen.Status)
	var usageThen projections.PastUsage
	pgQuery(t, l, projections.QueryUsage, map[string]any{"account_id": "f-b", "month": "2026-01", "as_of": seeded.Format(time.RFC3339Nano)}, &usageThen)
	require.Len(t, usageThen.Months, 1)
	assert.Equal(t, "1.50", usageThen.Months[0].Total.Amount)
	status, body = pgGet(t, l, "/v1/accounts/f-b/usage?month=2026-01&as_of="+url.QueryEscape(seeded.Format(time.RFC3339Nano)))
	assert.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"as_of":`, "over HTTP too")
	status, body = pgGet(t, l, "/v1/accounts/f-b/usage?as_of="+url.QueryEscape(testledger.Epoch.Add(-time.Hour).Format(time.RFC3339)))
	assert.Equal(t, http.StatusNotFound, status, "no events an hour before the first: %s", body)

	// audit rebuild compares every read model: the four accounts' one-account read models and
	// one page each of accounts, totals, payg_contracts and January's payg_charges.
	src, err := audit.NewSource(pgCtx(t), l.NC)
	require.NoError(t, err)
	rep, err := audit.Rebuild(pgCtx(t), src, l.Client, ledger.DefaultCatalogue())
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Differences)
	assert.Equal(t, 4*len(projections.AccountQueries)+4, rep.Compared)
}

func TestFleetQueryErrors(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	fleetSeed(t, l)
	for _, c := range []struct{ name, query string }{
		{projections.QueryAccounts, "status=sleeping"},
		{projections.QueryAccounts, "limit=0x"},
		{projections.QueryAccounts, "limit=5000"},
		{projections.QueryAccounts, "cursor=nonsense"},
		{projections.QueryAccounts, "staus=grace"},
		{projections.QueryAccounts, "month=2026-01"},
		{projections.QueryAccounts, "cursor=" + projections.EncodeCursor(projections.QueryPaygContracts, "f-a")},
		{projections.QueryTotals, "limit=2"},
		{projections.QueryPaygCharges, ""},
		{projections.QueryPaygCharges, "month=2026-1"},
		{projections.QueryPaygCharges, "month=2026-01&shortfall=true"},
		{projections.QueryPaygContracts, "active=maybe"},
		{projections.QueryAccounts, "as_of=yesterday"},
	} {
		status, body := pgGet(t, l, projectionsRoute(c.name)+"?"+c.query)
		assert.Equal(t, http.StatusBadRequest, status, "%s?%s: %s", c.name, c.query, body)
		assert.Contains(t, string(body), `"code":"invalid_argument"`)
	}
	_, err := l.Client.Query(pgCtx(t), projections.QueryAccounts, map[string]any{"account_id": "f-a"})
	assert.Equal(t, ledger.CodeInvalidArgument, pgCode(err), "fleet queries take no account_id")
	_, err = l.Client.Query(pgCtx(t), projections.QueryBalance, map[string]any{"account_id": "f-a", "limit": 3})
	assert.Equal(t, ledger.CodeInvalidArgument, pgCode(err), "one-account queries take no paging")
}

// TestFleetAsOfNamesABrokenAccount: one message in LEDGER that cannot be decoded, under one
// account's subject, used to make every fleet as_of answer internal. The fleet is answered over
// NATS and HTTP alike without that account, which is named with the position where it breaks.
func TestFleetAsOfNamesABrokenAccount(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	newAccount(t, l, "fine").activeLicense("fine-L", "100")
	newAccount(t, l, "hurt").activeLicense("hurt-L", "50")
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	ack, err := js.Publish(pgCtx(t), jetstore.DefaultSubjects.Of("hurt"), []byte("{"))
	require.NoError(t, err)

	var totals api.Totals
	fleetQuery(t, l, projections.QueryTotals, map[string]string{"as_of": l.Clock.Now().Format(time.RFC3339Nano)}, &totals)
	assert.Equal(t, 1, totals.Accounts)
	assertDec(t, "100", totals.Credits.Sold, "the broken account's credits are left out")
	require.NotNil(t, totals.Past)
	assert.Equal(t, 1, totals.BrokenCount)
	require.Len(t, totals.BrokenAccounts, 1)
	assert.Equal(t, "hurt", totals.BrokenAccounts[0].AccountID)
	assert.Equal(t, ack.Sequence, totals.BrokenAccounts[0].Position)
	assert.Contains(t, totals.BrokenAccounts[0].Reason, "cannot be decoded")
}

// TestFleetAsOfReadsToAnOwnershipRecordAtTheHead: a partition ownership record at the stream's
// head holds no event; the fleet as_of fold reads the stream up to the head, and used to wait for
// an event there that never came (the fold's slot held, every later fleet as_of refused).
func TestFleetAsOfReadsToAnOwnershipRecordAtTheHead(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	newAccount(t, l, "fenced").activeLicense("FE-1", "100")
	rec, err := ledger.EncodeFence(ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 7, Owner: "node-x",
		Partition: 3, Partitions: ledger.DefaultPartitions, Time: l.Clock.Now()})
	require.NoError(t, err)
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	ack, err := js.Publish(pgCtx(t), jetstore.FenceSubject(3), rec)
	require.NoError(t, err)
	require.Equal(t, ack.Sequence, streamHead(t, l), "the record is the head")

	var totals api.Totals
	fleetQuery(t, l, projections.QueryTotals, map[string]string{"as_of": l.Clock.Now().Format(time.RFC3339Nano)}, &totals)
	assert.Equal(t, 1, totals.Accounts)
	assertDec(t, "100", totals.Credits.Sold)
}
