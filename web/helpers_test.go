package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
)

// sender sends commands to one account with fresh command ids.
type sender struct {
	t       testing.TB
	l       *testledger.Ledger
	account string
	n       int
}

func newSender(t testing.TB, l *testledger.Ledger, account string) *sender {
	return &sender{t: t, l: l, account: account}
}

func (s *sender) meta() commands.Meta {
	s.n++
	return commands.Meta{CommandID: fmt.Sprintf("%s-cmd-%d", s.account, s.n), AccountID: s.account}
}

func (s *sender) ok(a commands.Accepted, err error) commands.Accepted {
	s.t.Helper()
	require.NoError(s.t, err)
	return a
}

func (s *sender) buy(id, source, credits string, termMonths int, autoRenew bool) commands.Accepted {
	s.t.Helper()
	ctx := context.Background()
	s.ok(s.l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: s.meta(), LicenseID: id, Source: source,
		Credits: commands.MustAmount(credits), TermMonths: &termMonths, AutoRenew: &autoRenew}))
	return s.ok(s.l.Client.ActivateLicense(ctx, commands.ActivateLicense{Meta: s.meta(), LicenseID: id}))
}

func (s *sender) allocate(feature, credits string) commands.Accepted {
	s.t.Helper()
	return s.ok(s.l.Client.AllocateCredits(context.Background(), commands.AllocateCredits{Meta: s.meta(), Feature: feature, Credits: commands.MustAmount(credits)}))
}

// seed gives the account a history with every kind of row and step the page shows, spread over
// five weeks of the manual clock: a sales license, an Azure license with an increase item,
// allocations, a feature switched to PAYG, then the Azure license renews (day 32) and a short
// license expires (day 35). At the end: total 1500, allocated 500, available 1000.
func seed(t testing.TB, l *testledger.Ledger, account string) *sender {
	t.Helper()
	s := newSender(t, l, account)
	ctx := context.Background()
	day := func(n int) { l.Clock.Set(testledger.Epoch.Add(time.Duration(n) * 24 * time.Hour)) }
	day(0)
	s.buy("L-sales", "sales", "1000", 12, true)
	s.buy("AZ-1", "azure_marketplace", "300", 1, true) // term ends 2026-02-15
	s.ok(l.Client.UpgradeContract(ctx, commands.UpgradeContract{Meta: s.meta(), LicenseID: "AZ-1", AdditionalCredits: commands.MustAmount("200"), ItemID: "AZ-1-2"}))
	day(3)
	s.buy("L-short", "sales", "250", 1, false) // term ends 2026-02-18
	day(5)
	s.allocate("container_security", "400")
	day(8)
	s.allocate("file_security", "150")
	s.allocate("email_security", "100")
	day(10)
	s.ok(l.Client.PurchasePaygContract(ctx, commands.PurchasePaygContract{Meta: s.meta(), ContractID: "P-1"}))
	s.ok(l.Client.ActivatePaygContract(ctx, commands.ActivatePaygContract{Meta: s.meta(), ContractID: "P-1"}))
	s.ok(l.Client.SwitchBillingModel(ctx, commands.SwitchBillingModel{Meta: s.meta(), Feature: "file_security", To: "payg"}))
	day(32)
	sweepUntil(t, l, account, func(h historyAnswer) bool { return h.last().Type == "LicenseRenewed" })
	day(35)
	sweepUntil(t, l, account, func(h historyAnswer) bool { return h.last().Type == "LicenseExpired" })
	return s
}

// sweepUntil runs the expiry processor until the account's history satisfies done.
func sweepUntil(t testing.TB, l *testledger.Ledger, account string, done func(historyAnswer) bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		l.Sweep() // asked again on each poll: a sweep is idempotent, and one request alone can wait for the next
		var h historyAnswer
		return getJSON(t, l.HTTPURL()+"/v1/accounts/"+account+"/history", &h) == http.StatusOK && done(h)
	}, 10*time.Second, 20*time.Millisecond, "the expiry processor ran")
}

// getJSON fetches url into out and returns the status.
func getJSON(t testing.TB, url string, out any) int {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(body, out), "body: %s", body)
	}
	return res.StatusCode
}

// errorCode fetches url and returns its status and the rejection's code.
func errorCode(t testing.TB, url string) (int, string) {
	t.Helper()
	var r struct {
		OK    bool `json:"ok"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	status := getJSON(t, url, &r)
	require.False(t, r.OK)
	return status, r.Error.Code
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// allocateAfterBuy buys and activates a license, then allocates from it; it returns the
// allocation's reply.
func (s *sender) allocateAfterBuy() commands.Accepted {
	s.t.Helper()
	s.buy(s.account+"-L", "sales", "100", 12, true)
	return s.allocate("container_security", "10")
}

// seedUsage records two days of file_security PAYG usage (200 gb in February) when the server
// meters usage (issue 5), and reports whether it did.
func seedUsage(t testing.TB, l *testledger.Ledger, s *sender) bool {
	t.Helper()
	res, err := http.Get(l.HTTPURL() + "/v1/accounts/" + s.account + "/usage")
	require.NoError(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Logf("no usage read model on this server (GET usage: %d); the usage panel stays hidden", res.StatusCode)
		return false
	}
	for i, u := range []struct{ quantity, day string }{{"120", "2026-02-18T12:00:00Z"}, {"80", "2026-02-19T06:00:00Z"}} {
		m := s.meta()
		s.ok(l.Client.Send(context.Background(), "record_usage", map[string]any{
			"command_id": m.CommandID, "account_id": m.AccountID, "usage_id": fmt.Sprintf("u-%d", i+1),
			"feature": "file_security", "quantity": u.quantity, "unit": "gb", "occurred_at": u.day,
		}))
	}
	return true
}
