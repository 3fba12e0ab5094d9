package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

// TestPastContractStartBroughtUpToDate: a license bought with a past contract_start gets its
// renewals or its expiry in the same reply.
func TestPastContractStartBroughtUpToDate(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	now := testledger.Epoch
	cases := []struct {
		name       string
		start      time.Time
		term       int
		autoRenew  bool
		wantEvents []string
		wantStatus string
		wantExpiry time.Time
	}{
		{name: "renews once", start: now.AddDate(-1, -1, 0), term: 12, autoRenew: true,
			wantEvents: []string{"LicensePurchased", "LicenseRenewed"}, wantStatus: "pending", wantExpiry: now.AddDate(1, -1, 0)},
		{name: "renews three times", start: now.AddDate(-3, -1, 0), term: 12, autoRenew: true,
			wantEvents: []string{"LicensePurchased", "LicenseRenewed", "LicenseRenewed", "LicenseRenewed"}, wantStatus: "pending", wantExpiry: now.AddDate(1, -1, 0)},
		{name: "expires exactly now renews", start: now.AddDate(-1, 0, 0), term: 12, autoRenew: true,
			wantEvents: []string{"LicensePurchased", "LicenseRenewed"}, wantStatus: "pending", wantExpiry: now.AddDate(1, 0, 0)},
		{name: "short term renews for 12 months", start: now.AddDate(0, -3, 0), term: 1, autoRenew: true,
			wantEvents: []string{"LicensePurchased", "LicenseRenewed"}, wantStatus: "pending", wantExpiry: now.AddDate(0, -2, 0).AddDate(1, 0, 0)},
		{name: "expires without auto-renew", start: now.AddDate(-1, -1, 0), term: 12, autoRenew: false,
			wantEvents: []string{"LicensePurchased", "LicenseExpired"}, wantStatus: "expired", wantExpiry: now.AddDate(0, -1, 0)},
		{name: "still running", start: now.AddDate(0, -6, 0), term: 12, autoRenew: false,
			wantEvents: []string{"LicensePurchased"}, wantStatus: "pending", wantExpiry: now.AddDate(0, 6, 0)},
		{name: "future start", start: now.AddDate(0, 1, 0), term: 24, autoRenew: true,
			wantEvents: []string{"LicensePurchased"}, wantStatus: "pending", wantExpiry: now.AddDate(2, 1, 0)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAccount(t, l, fmt.Sprintf("past%d", i))
			r := a.ok("purchase_license", m{"license_id": a.id + "-L", "source": "sales", "credits": "10",
				"term_months": tc.term, "auto_renew": tc.autoRenew, "contract_start": rfc3339(tc.start)})
			assert.Equal(t, tc.wantEvents, r.types())
			ls := getLicenses(t, l, a.id, r.Position)
			require.Len(t, ls.Licenses, 1)
			assert.Equal(t, tc.wantStatus, ls.Licenses[0].Status)
			assert.Equal(t, tc.wantExpiry, ls.Licenses[0].ExpiresAt)
			assert.Equal(t, now, ls.Licenses[0].PurchasedAt, "purchased_at is the decision time")
			if tc.wantStatus == "expired" {
				a.reject("activate_license", m{"license_id": a.id + "-L"}, "license_expired")
				return
			}
			r = a.ok("activate_license", m{"license_id": a.id + "-L"})
			assertDec(t, "10", getBalance(t, l, a.id, r.Position).TotalCredits)
		})
	}
}

// TestExpiryProcessor: after the clock passes expires_at, one sweep renews every auto-renewing
// license (and its Azure items) for 12 months and expires the others; allocations beyond the
// remaining pool show as shortfall.
func TestExpiryProcessor(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "exp")
	a.activeLicense("exp-R", "100") // auto-renew on by default
	a.ok("purchase_license", m{"license_id": "exp-X", "source": "sales", "credits": "100", "auto_renew": false})
	a.ok("activate_license", m{"license_id": "exp-X"})
	a.activeLicense("exp-T", "50")
	a.ok("set_auto_renew", m{"license_id": "exp-T", "enabled": false})
	a.ok("purchase_license", m{"license_id": "exp-AZ", "source": "azure_marketplace", "credits": "10"})
	a.ok("activate_license", m{"license_id": "exp-AZ"})
	a.ok("upgrade_contract", m{"license_id": "exp-AZ", "additional_credits": "5", "item_id": "exp-AZ-up"})
	a.ok("purchase_license", m{"license_id": "exp-P", "source": "sales", "credits": "1", "auto_renew": false})
	a.ok("allocate_credits", m{"feature": "container_security", "credits": "150"})
	r := a.ok("allocate_credits", m{"feature": "email_security", "credits": "50"})
	b := getBalance(t, l, a.id, r.Position)
	assertDec(t, "265", b.TotalCredits)
	assertDec(t, "65", b.AvailableCredits)
	head := streamHead(t, l)

	expiry := testledger.Epoch.AddDate(1, 0, 0)
	l.Clock.Set(expiry.Add(time.Second))
	l.Sweep()
	var ls licenses
	swept := func() bool {
		ls = getLicenses(t, l, a.id, 0)
		x, _ := ls.byID("exp-X")
		rr, _ := ls.byID("exp-R")
		return x.Status == "expired" && rr.ExpiresAt.After(expiry)
	}
	if !assert.Eventually(t, swept, eventuallyWait, eventuallyTick,
		"BUG: l.Sweep() did not run the expiry processor: writer.Run parks the sweep's single AdvanceTime request in carry "+
			"(launch turned 1 request into 1 request, so the loop saw no progress) until another request or tick arrives") {
		// Any other command wakes the writer up; carry on checking the outcome of the sweep.
		newAccount(t, l, "exp-nudge").ok("purchase_payg_contract", m{"contract_id": "exp-nudge-P"})
		require.Eventually(t, swept, eventuallyWait, eventuallyTick, "the expiry processor ran")
	}
	want := map[string]struct {
		status string
		expiry time.Time
	}{
		"exp-R":     {"active", expiry.AddDate(1, 0, 0)},
		"exp-X":     {"expired", expiry},
		"exp-T":     {"expired", expiry},
		"exp-AZ":    {"active", expiry.AddDate(1, 0, 0)},
		"exp-AZ-up": {"active", expiry.AddDate(1, 0, 0)},
		"exp-P":     {"expired", expiry},
	}
	require.Eventually(t, func() bool {
		ls = getLicenses(t, l, a.id, 0)
		for id, w := range want {
			it, ok := ls.byID(id)
			if !ok || it.Status != w.status || !it.ExpiresAt.Equal(w.expiry) {
				return false
			}
		}
		return true
	}, eventuallyWait, eventuallyTick, "licenses after the sweep: %+v", ls.Licenses)

	b = getBalance(t, l, a.id, ls.Position)
	assertDec(t, "115", b.TotalCredits, "R 100 + AZ 10 + item 5 remain")
	assertDec(t, "200", b.AllocatedCredits, "the ledger does not release anyone's credits")
	assertDec(t, "85", b.Shortfall)
	assertDec(t, "0", b.AvailableCredits)

	types := map[string]int{}
	for _, e := range readStream(t, l) {
		if e.position > head && e.env.AccountID == a.id {
			types[e.env.Type]++
		}
	}
	assert.Equal(t, map[string]int{"LicenseRenewed": 2, "LicenseExpired": 3}, types, "one event per lapsed license")

	a.reject("allocate_credits", m{"feature": "file_security", "credits": "0.0001"}, "insufficient_credits")
	a.reject("activate_license", m{"license_id": "exp-P"}, "license_expired")
	r = a.ok("release_credits", m{"feature": "container_security", "credits": "100"})
	b = getBalance(t, l, a.id, r.Position)
	assertDec(t, "0", b.Shortfall)
	assertDec(t, "15", b.AvailableCredits)

	// A second sweep with nothing due changes nothing: the renewed term runs another year.
	l.Sweep()
	r = a.ok("allocate_credits", m{"feature": "file_security", "credits": "1"})
	ls = getLicenses(t, l, a.id, r.Position)
	rr, _ := ls.byID("exp-R")
	assert.Equal(t, expiry.AddDate(1, 0, 0), rr.ExpiresAt)
}

// TestExpiryProcessorRunsOnItsOwn: with a short sweep interval and no manual sweep, a lapsed
// license is renewed or expired promptly.
func TestExpiryProcessorRunsOnItsOwn(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, func(c *server.Config) { c.SweepInterval = 50 * time.Millisecond })
	waitServing(t, l)
	a := newAccount(t, l, "auto")
	a.activeLicense("auto-R", "10")
	a.ok("purchase_license", m{"license_id": "auto-X", "source": "sales", "credits": "10", "auto_renew": false})
	r := a.ok("activate_license", m{"license_id": "auto-X"})
	expiry := testledger.Epoch.AddDate(1, 0, 0)
	l.Clock.Set(expiry)
	// Every read waits for the last acknowledged write (min_position): a projection still behind
	// it answers not_found, which is lag, not a missed sweep.
	var ls licenses
	require.Eventually(t, func() bool {
		ls = getLicenses(t, l, a.id, r.Position)
		x, _ := ls.byID("auto-X")
		rr, _ := ls.byID("auto-R")
		return x.Status == "expired" && rr.ExpiresAt.Equal(expiry.AddDate(1, 0, 0))
	}, eventuallyWait, eventuallyTick, "the sweep ran on its own after expires_at")
	assertDec(t, "10", getBalance(t, l, a.id, ls.Position).TotalCredits)
}

// TestCommandBringsLicensesUpToDate: a command decided after expires_at, before any sweep,
// carries the due renewals in its own reply; a rejected one appends nothing, not even them.
func TestCommandBringsLicensesUpToDate(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "lazy")
	a.activeLicense("lazy-R", "10")
	a.ok("purchase_license", m{"license_id": "lazy-X", "source": "sales", "credits": "10", "auto_renew": false})
	a.ok("activate_license", m{"license_id": "lazy-X"})
	head := streamHead(t, l)
	l.Clock.Set(testledger.Epoch.AddDate(1, 0, 1))

	// Only 10 credits remain once lazy-X lapses; the decision must not use its credits.
	a.reject("allocate_credits", m{"feature": "file_security", "credits": "15"}, "insufficient_credits")
	assert.Equal(t, head, streamHead(t, l))

	r := a.ok("allocate_credits", m{"feature": "file_security", "credits": "10"})
	assert.Equal(t, []string{"LicenseRenewed", "LicenseExpired", "CreditsAllocated"}, r.types())
	b := getBalance(t, l, a.id, r.Position)
	assertDec(t, "10", b.TotalCredits)
	assertDec(t, "0", b.AvailableCredits)
}
