package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
)

// chromiumPath is Debian's chromium package (.ci/run installs it); $LEDGER_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("LEDGER_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// liveUpdateMax is how soon the page must show a new event (the issue asks for within a second).
const liveUpdateMax = time.Second

// browser starts headless Chromium with a fresh profile and returns a tab's context. It skips
// the test when Chromium is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("skipping the browser test: %s not found (install Debian's chromium package: apt-get install -y chromium)", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx), "start chromium") // binds the browser to ctx, not to a timeout
	return ctx
}

// page drives one tab with bounded waits.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	require.NoError(p.t, chromedp.Do(ctx, steps...), what)
}

func eval[T any](p page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, expr)
	return v
}

// text is the trimmed text of the first element matching sel ("" if none).
func (p page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '').trim()`, sel))
}

// waitText waits until the element's text is want, and fails with what it showed instead.
func (p page) waitText(sel, want string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	expr := fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '').trim() === %q`, sel, want)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))); err != nil {
		p.t.Fatalf("%s should show %q, shows %q (status: %q, error: %q): %v", sel, want, p.text(sel), p.text("#status"), p.text("#error"), err)
	}
}

// waitTrue waits until a JavaScript expression is true.
func (p page) waitTrue(expr, what string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))); err != nil {
		p.t.Fatalf("%s: %v (status: %q, error: %q)", what, err, p.text("#status"), p.text("#error"))
	}
}

func (p page) rows(sel string) [][]string {
	p.t.Helper()
	return eval[[][]string](p, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(r => [...r.cells].map(c => c.textContent.trim()))`, sel))
}

func (p page) screenshot(name string, full bool) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, shot)
	require.NoError(p.t, err)
	path := filepath.Join(artifactsDir(p.t), name)
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	p.t.Logf("screenshot: %s", path)
	return path
}

// artifactsDir is $LEDGER_ARTIFACTS, or creditledger-artifacts under the system temp dir.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("LEDGER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "creditledger-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// consoleErrors collects the page's uncaught exceptions.
func consoleErrors(ctx context.Context) func() []string {
	var mu sync.Mutex
	var errs []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// TestDashboardInChromium opens the page in real headless Chromium against a real ledger: it
// checks the numbers and rows shown, that a new event shows up live, the as-of control, the
// keyboard path and the phone layout, and saves screenshots as test artifacts.
func TestDashboardInChromium(t *testing.T) {
	ctx := browser(t)
	l := testledger.Start(t)
	s := seed(t, l, "acme")
	usage := seedUsage(t, l, s)
	p := page{t: t, ctx: ctx}
	exceptions := consoleErrors(ctx)

	// Keyboard only: the account field has focus on load; type the id and press Enter.
	p.do("open the page", 15*time.Second,
		chromedp.Navigate(l.HTTPURL()+"/"),
		chromedp.WaitVisible(chromedp.ID("account")),
	)
	assert.Equal(t, "account", eval[string](p, `document.activeElement.id`), "the account field has focus")
	p.do("pick the account", 5*time.Second, chromedp.KeyEvent("acme\r"))

	p.waitText("#total", "1,500", 10*time.Second)
	assert.Equal(t, "500", p.text("#allocated"))
	assert.Equal(t, "1,000", p.text("#available"))
	assert.Equal(t, "0", p.text("#shortfall"))
	assert.Contains(t, eval[string](p, `location.search`), "account=acme", "the page can be linked to")

	lic := p.rows("#licenses-table tbody tr")
	require.Len(t, lic, 4, "%v", lic)
	// License, Source, Status, Credits, Purchased, Activated, Expires, Auto-renew.
	assert.Equal(t, []string{"L-sales", "Sales", "active", "1,000", "2026-01-15", "2026-01-15", "2027-01-15", "Yes"}, lic[0])
	assert.Equal(t, []string{"AZ-1", "Azure Marketplace", "active", "300", "2026-01-15", "2026-01-15", "2027-02-15", "Yes"}, lic[1])
	assert.Equal(t, "↳ AZ-1-2 increase of AZ-1", lic[2][0], "an Azure increase is its own row under its license")
	assert.Equal(t, []string{"Azure Marketplace", "active", "200"}, lic[2][1:4])
	assert.Equal(t, []string{"L-short", "Sales", "expired", "250"}, lic[3][:4])
	assert.Equal(t, "No", lic[3][7])

	assert.Equal(t, "PAYG", p.text(`[data-feature="file_security"] .model .badge`))
	assert.Equal(t, "Credits", p.text(`[data-feature="container_security"] .model .badge`))
	assert.Contains(t, p.text(`[data-feature="file_security"] .next`), "2026-02-24 09:00")
	assert.Contains(t, p.text(`[data-feature="file_security"] ol.switches`), "Credits → PAYG")

	events := 16
	if usage {
		events += 2
	}
	hist := p.rows("#history-table tbody tr")
	require.Len(t, hist, events, "one row per event")
	assert.Equal(t, 1, eval[int](p, `document.querySelectorAll('#history-chart circle.mark.expired').length`))
	assert.Equal(t, 1, eval[int](p, `document.querySelectorAll('#history-chart circle.mark.renewed').length`))
	assert.Equal(t, 2, eval[int](p, `document.querySelectorAll('#alloc-chart rect.bar-feature').length`), "one bar per allocated feature")
	if usage {
		rows := p.rows("#usage-table tbody tr")
		require.Len(t, rows, 2, "%v", rows)
		assert.Equal(t, []string{"2026-02", "File security", "200 gb"}, rows[0][:3])
		assert.Equal(t, "2", rows[0][4])
		assert.Equal(t, "2026-02 total", rows[1][0])
		assert.Equal(t, "active", p.text("#account-state .badge"))
	} else {
		assert.True(t, eval[bool](p, `document.getElementById('usage').hidden`), "no usage panel while the server has no usage read model")
	}
	p.do("1280x800 viewport", 5*time.Second, chromedp.EmulateViewport(1280, 800),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.screenshot("dashboard-1280x800.png", false)
	if out := os.Getenv("LEDGER_DASHBOARD_PNG"); out != "" { // regenerates docs/dashboard.png
		png, err := os.ReadFile(filepath.Join(artifactsDir(t), "dashboard-1280x800.png"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(out, png, 0o644))
	}

	// Live: a command sent over NATS shows up without a reload.
	p.waitTrue(`document.body.dataset.live === 'live'`, "the event stream is connected", 10*time.Second)
	sent := time.Now()
	a := s.allocate("advanced_server_workload_protection", "250")
	p.waitText("#allocated", "750", 10*time.Second)
	took := time.Since(sent)
	t.Logf("live update shown %s after the command was sent", took)
	assert.Less(t, took, liveUpdateMax, "the page updates within a second of the event")
	assert.Equal(t, "750", p.text("#available"))
	assert.Equal(t, itoa(a.Position), eval[string](p, `document.body.dataset.position`))
	require.Len(t, p.rows("#history-table tbody tr"), events+1)
	p.screenshot("dashboard-full.png", true)

	// As of a moment before the clock moved: the history stops there, and the read models
	// follow where the server answers as_of.
	p.do("set as of", 5*time.Second, chromedp.Evaluate[chromedp.Void](
		`(() => { const i = document.getElementById('as-of'); i.value = '2026-01-21T09:00:00'; i.dispatchEvent(new Event('change')); })()`))
	p.waitTrue(`document.querySelectorAll('#history-table tbody tr').length === 8`, "the history is cut at as_of", 10*time.Second)
	note := p.text("#as-of-note")
	assert.Contains(t, note, "2026-01-21 09:00")
	assert.Contains(t, eval[string](p, `location.search`), "as_of=2026-01-21T09%3A00%3A00Z")
	if strings.Contains(note, "does not answer as_of") {
		t.Log("the query API ignores as_of here; the page says so")
	} else {
		p.waitText("#total", "1,750", 10*time.Second)
		assert.Equal(t, "400", p.text("#allocated"))
		assert.Equal(t, "L-short", p.rows("#licenses-table tbody tr")[3][0])
		assert.Equal(t, "active", p.rows("#licenses-table tbody tr")[3][2], "L-short had not expired yet")
	}
	p.do("back to now", 5*time.Second, chromedp.Click(chromedp.ID("now")))
	p.waitTrue(fmt.Sprintf(`document.querySelectorAll('#history-table tbody tr').length === %d`, events+1), "back to now", 10*time.Second)
	p.waitText("#total", "1,500", 10*time.Second)

	// Phone width: nothing runs off the side of the page.
	p.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844))
	p.waitTrue(`document.documentElement.scrollWidth <= window.innerWidth`, "no horizontal scrolling at 390 px", 5*time.Second)
	p.screenshot("dashboard-phone.png", true)

	assert.Empty(t, exceptions(), "uncaught exceptions in the page")
}
