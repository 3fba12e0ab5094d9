package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// seedFleet gives a ledger six accounts, each needing a different kind of attention, on a clock
// set to the real time (the page computes "expiring within 30 days" from the browser's clock):
//
//	northwind    sales 5000 + Azure 1200, 2600 allocated, a PAYG contract with rates, usage now
//	globex       AWS 800 whose one-month term ends in 20 days, auto-renew off
//	initech      sales 1000 + a one-month sales 400 that expired 10 days ago under 1200 allocated
//	umbrella     lost its marketplace subscription to umbrella-eu an hour ago: in grace
//	umbrella-eu  holds that subscription
//	hooli        Azure 300, 120 allocated
func seedFleet(t *testing.T, l *testledger.Ledger) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) { l.Clock.Set(now.Add(d)) }
	day := 24 * time.Hour
	at(-40 * day)
	in := newSender(t, l, "initech")
	in.buy("IN-1", "sales", "1000", 12, true)
	in.buy("IN-2", "sales", "400", 1, false)
	in.allocate("container_security", "1200")
	nw := newSender(t, l, "northwind")
	nw.buy("NW-1", "sales", "5000", 12, true)
	nw.buy("NW-AZ", "azure_marketplace", "1200", 12, true)
	nw.allocate("container_security", "1800")
	nw.allocate("email_security", "800")
	nw.ok(l.Client.PurchasePaygContract(ctx, commands.PurchasePaygContract{Meta: nw.meta(), ContractID: "NW-PAYG",
		Rates: map[string]commands.Amount{"file_security": commands.MustAmount("0.04"), "advanced_server_workload_protection:large": commands.MustAmount("0.02")}}))
	nw.ok(l.Client.ActivatePaygContract(ctx, commands.ActivatePaygContract{Meta: nw.meta(), ContractID: "NW-PAYG"}))
	nw.ok(l.Client.SwitchBillingModel(ctx, commands.SwitchBillingModel{Meta: nw.meta(), Feature: "file_security", To: "payg"}))
	hooli := newSender(t, l, "hooli")
	hooli.buy("HO-1", "azure_marketplace", "300", 12, true)
	hooli.allocate("file_security", "120")
	at(-10 * day)
	gl := newSender(t, l, "globex")
	gl.buy("GL-1", "aws_marketplace", "800", 1, false)
	at(-time.Hour)
	um := newSender(t, l, "umbrella")
	um.ok(l.Client.LinkSubscription(ctx, commands.LinkSubscription{Meta: um.meta(), SubscriptionID: "sub-umb", Marketplace: ledger.MarketplaceAWS}))
	eu := newSender(t, l, "umbrella-eu")
	at(-30 * time.Minute)
	eu.ok(l.Client.LinkSubscription(ctx, commands.LinkSubscription{Meta: eu.meta(), SubscriptionID: "sub-umb", Marketplace: ledger.MarketplaceAWS}))
	at(-time.Minute)
	nw.ok(l.Client.RecordUsage(ctx, commands.RecordUsage{Meta: nw.meta(), UsageID: "nw-u1", Feature: "file_security",
		Quantity: commands.MustAmount("1234.5"), Unit: "gb", OccurredAt: now.Add(-time.Minute).Format(time.RFC3339)}))
	at(0)
	sweepUntil(t, l, "initech", func(h historyAnswer) bool { return h.last().Type == "LicenseExpired" })
}

// TestOverviewInChromium opens the overview and the account list in headless Chromium: the
// fleet totals, the accounts needing attention, a search that leads to an account's page, and
// that page's PAYG contract with its rates and its event list with the hash-chain status.
func TestOverviewInChromium(t *testing.T) {
	ctx := browser(t)
	l := testledger.Start(t)
	seedFleet(t, l)
	p := page{t: t, ctx: ctx}
	exceptions := consoleErrors(ctx)

	p.do("open the overview", 15*time.Second, chromedp.Navigate(l.HTTPURL()+"/"), chromedp.WaitVisible(chromedp.ID("overview")))
	p.waitText("#fleet-accounts", "6", 10*time.Second)
	assert.Equal(t, "8,700", p.text("#fleet-sold"), "every item sold, the expired one included")
	assert.Equal(t, "8,300", p.text("#fleet-active"))
	assert.Equal(t, "3,920", p.text("#fleet-allocated"))
	assert.Equal(t, "49.38 USD", p.text("#fleet-payg"), "1234.5 GB at 0.04, half-even to the cent")
	assert.Equal(t, "1 in grace", p.text("#fleet-grace"))
	assert.Equal(t, "1 with a shortfall", p.text("#fleet-shortfall"))
	attention := func(id string) []string {
		return eval[[]string](p, `[...document.querySelectorAll('#`+id+` li[data-account]')].map(li => li.dataset.account)`)
	}
	assert.Equal(t, []string{"initech"}, attention("att-shortfall"))
	assert.Equal(t, []string{"umbrella"}, attention("att-grace"))
	assert.Equal(t, []string{"globex"}, attention("att-expiring"))
	src := p.rows("#by-source-table tbody tr")
	require.Len(t, src, 3)
	assert.Equal(t, []string{"AWS Marketplace", "1", "1", "800", "800"}, src[0])
	p.do("1280x800 viewport", 5*time.Second, chromedp.EmulateViewport(1280, 800),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.screenshot("overview-1280x800.png", false)
	if out := os.Getenv("LEDGER_OVERVIEW_PNG"); out != "" { // regenerates docs/overview.png
		png, err := os.ReadFile(filepath.Join(artifactsDir(t), "overview-1280x800.png"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(out, png, 0o644))
	}

	// As of 45 minutes ago: umbrella still held its subscription, umbrella-eu did not exist.
	before := time.Now().UTC().Add(-45 * time.Minute).Format("2006-01-02T15:04:05")
	p.do("set as of", 5*time.Second, chromedp.Evaluate[chromedp.Void](
		`(() => { const i = document.getElementById('as-of'); i.value = '`+before+`'; i.dispatchEvent(new Event('change')); })()`))
	p.waitText("#fleet-accounts", "5", 10*time.Second)
	assert.Equal(t, "0 in grace", p.text("#fleet-grace"))
	assert.Empty(t, attention("att-grace"))
	assert.Equal(t, []string{"initech"}, attention("att-shortfall"), "IN-2's expiry was due then, though recorded later")
	assert.Contains(t, p.text("#as-of-note"), "Showing")
	assert.Contains(t, eval[string](p, `location.search`), "as_of=")
	p.do("back to now", 5*time.Second, chromedp.Click(chromedp.ID("now")))
	p.waitText("#fleet-accounts", "6", 10*time.Second)

	// The account list: search by prefix, filter by status, then follow an account.
	p.follow(`#nav-accounts`)
	p.do("the list", 10*time.Second, chromedp.WaitVisible(chromedp.ID("accounts-view")))
	p.waitTrue(`document.querySelectorAll('#accounts-table tbody tr').length === 6`, "every account is listed", 10*time.Second)
	p.do("search umb", 5*time.Second, chromedp.SendKeys(chromedp.ID("list-prefix"), "umb\r"))
	p.waitTrue(`document.querySelectorAll('#accounts-table tbody tr').length === 2`, "the prefix search", 10*time.Second)
	p.do("grace only", 5*time.Second, chromedp.SetValue(chromedp.ID("list-status"), "grace"), chromedp.Click(`#list-filter button[type=submit]`))
	p.waitTrue(`document.querySelectorAll('#accounts-table tbody tr').length === 1`, "the status filter", 10*time.Second)
	assert.Equal(t, "grace", p.rows("#accounts-table tbody tr")[0][1])
	p.follow(`#accounts-table tbody tr a`)
	p.waitText("#account-state .badge", "grace", 10*time.Second)
	assert.Contains(t, eval[string](p, `location.search`), "account=umbrella")

	// The account page: PAYG contract, rates, and the events with their chain status.
	p.do("open northwind", 15*time.Second, chromedp.Navigate(l.HTTPURL()+"/?account=northwind"))
	p.waitText("#total", "6,200", 10*time.Second)
	p.waitTrue(`!document.getElementById('contracts').hidden`, "the contracts panel", 10*time.Second)
	assert.Contains(t, p.text(`[data-contract="NW-PAYG"]`), "in effect")
	rates := p.rows("#contracts .rates-table tbody tr")
	assert.Equal(t, [][]string{{"Advanced server workload protection (large)", "0.02"}, {"File security", "0.04"}}, rates)
	p.waitTrue(`!document.getElementById('event-log').hidden`, "the event log", 10*time.Second)
	evs := p.rows("#event-log-table tbody tr")
	require.GreaterOrEqual(t, len(evs), 10)
	assert.Contains(t, p.text("#chain-summary"), fmt.Sprintf("All %d events check out", len(evs)))
	assert.Equal(t, "✓ ok", evs[0][5])
	assert.Equal(t, "UsageRecorded", evs[0][3], "newest first")

	p.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844), chromedp.Navigate(l.HTTPURL()+"/"))
	p.waitText("#fleet-accounts", "6", 10*time.Second)
	p.waitTrue(`document.documentElement.scrollWidth <= window.innerWidth`, "no horizontal scrolling at 390 px", 5*time.Second)
	p.screenshot("overview-phone.png", true)
	assert.Empty(t, exceptions(), "uncaught exceptions in the page")
}

// follow opens the link sel points at, as a click would, and waits for the new page to load
// (a click alone races the poll that follows it against the navigation).
func (p page) follow(sel string) {
	p.t.Helper()
	href := eval[string](p, fmt.Sprintf(`document.querySelector(%q).href`, sel))
	p.do("follow "+href, 15*time.Second, chromedp.Navigate(href))
}

// The overview lists at most 20 accounts per kind of attention; its "More" link opens the
// account list with that filter, not every account.
func TestOverviewMoreLinkKeepsItsFilter(t *testing.T) {
	ctx := browser(t)
	l := testledger.Start(t)
	c := context.Background()
	for i := range 21 {
		s := newSender(t, l, fmt.Sprintf("g-%02d", i))
		sub := fmt.Sprintf("sub-g-%02d", i)
		s.ok(l.Client.LinkSubscription(c, commands.LinkSubscription{Meta: s.meta(), SubscriptionID: sub, Marketplace: ledger.MarketplaceAWS}))
		s.ok(l.Client.UnlinkSubscription(c, commands.UnlinkSubscription{Meta: s.meta(), SubscriptionID: sub}))
	}
	newSender(t, l, "active-1").buy("A-1", "sales", "10", 12, true)
	p := page{t: t, ctx: ctx}
	exceptions := consoleErrors(ctx)
	p.do("open the overview", 15*time.Second, chromedp.Navigate(l.HTTPURL()+"/"), chromedp.WaitVisible(chromedp.ID("overview")))
	p.waitText("#fleet-accounts", "22", 10*time.Second)
	more := `[...document.querySelectorAll('#att-grace a')].find((a) => a.textContent === 'More in the account list')`
	p.waitTrue(more+` !== undefined`, "a More link under In grace", 10*time.Second)
	href := eval[string](p, more+`.href`)
	p.do("follow "+href, 15*time.Second, chromedp.Navigate(href))
	p.do("the list", 10*time.Second, chromedp.WaitVisible(chromedp.ID("accounts-view")))
	p.waitTrue(`document.querySelectorAll('#accounts-table tbody tr').length > 0`, "the list", 10*time.Second)
	rows := p.rows("#accounts-table tbody tr")
	assert.Len(t, rows, 21, "the accounts in grace, not every account")
	for _, r := range rows {
		assert.Equal(t, "grace", r[1])
	}
	assert.Equal(t, "grace", eval[string](p, `document.getElementById('list-status').value`))
	assert.Empty(t, exceptions(), "uncaught exceptions in the page")
}

// TestOverviewAsOfNamesABrokenAccount: an account whose stored history breaks (a message that
// cannot be decoded) is left out of the overview as of a moment, and the page says which one and
// where, rather than failing the whole overview.
func TestOverviewAsOfNamesABrokenAccount(t *testing.T) {
	ctx := browser(t)
	l := testledger.Start(t)
	now := time.Now().UTC().Truncate(time.Second)
	l.Clock.Set(now.Add(-time.Hour))
	newSender(t, l, "fine").buy("FI-1", "sales", "100", 12, true)
	newSender(t, l, "hurt").buy("HU-1", "sales", "50", 12, true)
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	ack, err := js.Publish(context.Background(), jetstore.DefaultSubjects.Of("hurt"), []byte("{"))
	require.NoError(t, err)
	p := page{t: t, ctx: ctx}
	exceptions := consoleErrors(ctx)

	asOf := now.Add(-time.Minute).Format(time.RFC3339)
	p.do("open the overview as of a minute ago", 15*time.Second, chromedp.Navigate(l.HTTPURL()+"/?as_of="+asOf),
		chromedp.WaitVisible(chromedp.ID("overview")))
	p.waitText("#fleet-accounts", "1", 10*time.Second)
	assert.Equal(t, "100", p.text("#fleet-sold"), "the broken account's credits are left out")
	p.waitTrue(`document.getElementById('as-of-note').textContent.includes('hurt')`, "the note names the broken account", 10*time.Second)
	assert.Contains(t, p.text("#as-of-note"), fmt.Sprintf("hurt (position %d)", ack.Sequence))
	assert.Empty(t, exceptions(), "uncaught exceptions in the page")
}
