package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

var queryNames = []string{"balance", "licenses", "switches"}

// seedQueryAccount gives an account every kind of read-model content and returns the last position.
func seedQueryAccount(t *testing.T, a *account) uint64 {
	t.Helper()
	a.activeLicense(a.id+"-S", "1000")
	a.ok("purchase_license", m{"license_id": a.id + "-AZ", "source": "azure_marketplace", "credits": "10", "auto_renew": false})
	a.ok("activate_license", m{"license_id": a.id + "-AZ"})
	a.ok("upgrade_contract", m{"license_id": a.id + "-AZ", "additional_credits": "5", "item_id": a.id + "-AZ-up"})
	a.ok("purchase_license", m{"license_id": a.id + "-PEND", "source": "aws_marketplace", "credits": "7"})
	a.ok("allocate_credits", m{"feature": "container_security", "credits": "100.25"})
	a.ok("allocate_credits", m{"feature": "email_security", "credits": "50"})
	a.activePayg(a.id + "-P")
	return a.ok("switch_billing_model", m{"feature": "file_security", "to": "payg"}).Position
}

// TestQueriesNATSAndHTTPAnswerIdentically: every query answers the same JSON object over NATS
// and HTTP, with the contract's fields, decimal strings and RFC 3339 UTC times.
func TestQueriesNATSAndHTTPAnswerIdentically(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "q1")
	pos := seedQueryAccount(t, a)
	required := map[string][]string{
		"balance":  {"account_id", "position", "total_credits", "allocated_credits", "available_credits", "shortfall", "allocations"},
		"licenses": {"account_id", "position", "licenses"},
		"switches": {"account_id", "position", "features"},
	}
	for _, name := range queryNames {
		t.Run(name, func(t *testing.T) {
			msg := queryNATS(t, l, name, a.id, pos)
			require.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "%s", msg.Data)
			status, body := queryHTTP(t, l, name, a.id, pos)
			require.Equal(t, http.StatusOK, status, "%s", body)
			assert.JSONEq(t, string(msg.Data), string(body), "NATS and HTTP answer the same object")
			var obj map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(msg.Data, &obj))
			for _, k := range required[name] {
				assert.Contains(t, obj, k)
			}
			assert.JSONEq(t, `"q1"`, string(obj["account_id"]))
			assert.JSONEq(t, itoa(pos), string(obj["position"]), "answer carries the position it reflects")
		})
	}

	b := getBalance(t, l, a.id, pos)
	assertDec(t, "1015", b.TotalCredits, "pending AWS license is not in the pool")
	assertDec(t, "150.25", b.AllocatedCredits)
	assertDec(t, "864.75", b.AvailableCredits)
	assertDec(t, "0", b.Shortfall)
	assert.Len(t, b.Allocations, 2)
	assertDec(t, "100.25", b.Allocations["container_security"])
	var raw struct {
		TotalCredits any            `json:"total_credits"`
		Allocations  map[string]any `json:"allocations"`
	}
	query(t, l, "balance", a.id, pos, &raw)
	assert.Equal(t, "1015", raw.TotalCredits, "amounts are decimal strings")
	assert.Equal(t, "100.25", raw.Allocations["container_security"])

	// Times are RFC 3339 UTC on the wire.
	msg := queryNATS(t, l, "licenses", a.id, pos)
	var lraw struct {
		Licenses []map[string]any `json:"licenses"`
	}
	require.NoError(t, json.Unmarshal(msg.Data, &lraw))
	for _, it := range lraw.Licenses {
		for _, k := range []string{"license_id", "parent_license_id", "source", "status", "credits", "auto_renew", "purchased_at", "activated_at", "expires_at"} {
			assert.Contains(t, it, k)
		}
		exp, _ := it["expires_at"].(string)
		assert.True(t, strings.HasSuffix(exp, "Z"), "expires_at %q is UTC", exp)
		_, err := time.Parse(time.RFC3339, exp)
		assert.NoError(t, err)
		assert.IsType(t, "", it["credits"], "credits is a decimal string")
	}
}

// TestLicenseListItems checks every license item, including the Azure upgrade as its own item.
func TestLicenseListItems(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "q2")
	pos := seedQueryAccount(t, a)
	ls := getLicenses(t, l, a.id, pos)
	require.Equal(t, []string{"q2-S", "q2-AZ", "q2-AZ-up", "q2-PEND"}, licenseIDs(ls), "purchase order")
	epoch := testledger.Epoch
	year := epoch.AddDate(1, 0, 0)

	s, _ := ls.byID("q2-S")
	assert.Equal(t, "sales", s.Source)
	assert.Equal(t, "active", s.Status)
	assert.Equal(t, "1000", s.Credits)
	assert.True(t, s.AutoRenew)
	assert.Nil(t, s.ParentLicenseID)
	assert.Equal(t, epoch, s.PurchasedAt)
	require.NotNil(t, s.ActivatedAt)
	assert.Equal(t, epoch, *s.ActivatedAt)
	assert.Equal(t, year, s.ExpiresAt, "expires_at = contract_start (default now) + 12 months")

	parent, _ := ls.byID("q2-AZ")
	assert.Equal(t, "10", parent.Credits, "the Azure parent keeps its own credits")
	assert.False(t, parent.AutoRenew)
	item, _ := ls.byID("q2-AZ-up")
	require.NotNil(t, item.ParentLicenseID, "Azure upgrade is its own item with parent_license_id")
	assert.Equal(t, "q2-AZ", *item.ParentLicenseID)
	assert.Equal(t, "azure_marketplace", item.Source)
	assert.Equal(t, "5", item.Credits)
	assert.Equal(t, "active", item.Status)
	assert.Equal(t, parent.ExpiresAt, item.ExpiresAt, "the item has its parent's expires_at")

	pend, _ := ls.byID("q2-PEND")
	assert.Equal(t, "pending", pend.Status)
	assert.Nil(t, pend.ActivatedAt, "a pending license has no activated_at")

	// A derived item id on Azure, and a sales upgrade that raises the license's own credits.
	r := a.ok("upgrade_contract", m{"license_id": "q2-AZ", "additional_credits": "4"})
	r = a.ok("upgrade_contract", m{"license_id": "q2-S", "additional_credits": "0.5"})
	ls = getLicenses(t, l, a.id, r.Position)
	require.Len(t, ls.Licenses, 5)
	derived := ls.Licenses[4]
	require.NotNil(t, derived.ParentLicenseID)
	assert.Equal(t, "q2-AZ", *derived.ParentLicenseID)
	assert.Equal(t, "4", derived.Credits)
	assert.Equal(t, parent.ExpiresAt, derived.ExpiresAt)
	s, _ = ls.byID("q2-S")
	assert.Equal(t, "1000.5", s.Credits)
	assertDec(t, "1019.5", getBalance(t, l, a.id, r.Position).TotalCredits)
}

// TestAzureDerivedItemIDDoesNotCollideAcrossAccounts: an upgrade without item_id must not be
// refused because the id the ledger derives for it happens to be a license of another account.
func TestAzureDerivedItemIDDoesNotCollideAcrossAccounts(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	other := newAccount(t, l, "qz-other")
	other.ok("purchase_license", m{"license_id": "qz-AZ-u1", "source": "sales", "credits": "1"})
	a := newAccount(t, l, "qz")
	a.ok("purchase_license", m{"license_id": "qz-AZ", "source": "azure_marketplace", "credits": "10"})
	a.ok("activate_license", m{"license_id": "qz-AZ"})
	msg := a.send("upgrade_contract", m{"license_id": "qz-AZ", "additional_credits": "5"})
	if msg.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Errorf("BUG: upgrade without item_id rejected because the derived item id is another account's license: %s", msg.Data)
		return
	}
	r := decodeAccepted(t, msg)
	ls := getLicenses(t, l, a.id, r.Position)
	require.Len(t, ls.Licenses, 2)
	assert.NotEqual(t, "qz-AZ-u1", ls.Licenses[1].LicenseID)
}

func licenseIDs(ls licenses) []string {
	out := make([]string, len(ls.Licenses))
	for i, it := range ls.Licenses {
		out[i] = it.LicenseID
	}
	return out
}

// TestSwitchesAnswer lists every PAYG-eligible feature, with history for switched ones.
func TestSwitchesAnswer(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "q3")
	a.activeLicense("q3-L", "10")
	r := a.ok("purchase_payg_contract", m{"contract_id": "q3-P"})
	sw := getSwitches(t, l, a.id, r.Position)
	require.Len(t, sw.Features, 4, "the four PAYG-eligible features")
	for _, f := range []string{"container_security", "file_security", "cloud_account_assessment", "advanced_server_workload_protection"} {
		fs, ok := sw.Features[f]
		require.True(t, ok, f)
		assert.Equal(t, "credits", fs.BillingModel)
		assert.Empty(t, fs.History)
		assert.Nil(t, fs.NextSwitchAllowedAt)
	}
	a.ok("activate_payg_contract", m{"contract_id": "q3-P"})
	a.ok("allocate_credits", m{"feature": "advanced_server_workload_protection", "credits": "4"})
	now := l.Clock.Now()
	r = a.ok("switch_billing_model", m{"feature": "advanced_server_workload_protection", "to": "payg"})
	assert.Equal(t, []string{"CreditsReleased", "BillingModelSwitched"}, r.types())
	sw = getSwitches(t, l, a.id, r.Position)
	fs := sw.Features["advanced_server_workload_protection"]
	assert.Equal(t, "payg", fs.BillingModel)
	require.NotNil(t, fs.NextSwitchAllowedAt)
	assert.Equal(t, now.Add(30*24*time.Hour), *fs.NextSwitchAllowedAt)
	assert.Equal(t, []switchEntry{{From: "credits", To: "payg", At: now}}, fs.History)
	b := getBalance(t, l, a.id, r.Position)
	assertDec(t, "0", b.AllocatedCredits, "switching to payg released the feature's credits")
	assertDec(t, "10", b.AvailableCredits)
}

// TestQueryUnknownAccount: not_found over NATS (with the micro error headers) and 404 over HTTP.
func TestQueryUnknownAccount(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	newAccount(t, l, "known").ok("purchase_payg_contract", m{"contract_id": "known-P"})
	for _, name := range queryNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := decodeRejection(t, queryNATS(t, l, name, "nobody", 0))
			assert.Equal(t, "not_found", r.Code)
			status, body := queryHTTP(t, l, name, "nobody", 0)
			assert.Equal(t, http.StatusNotFound, status)
			assert.JSONEq(t, string(r.raw), string(body), "HTTP answers the same rejection object")
		})
	}
}

// TestQueryBadRequests: malformed queries are invalid_argument (HTTP 400).
func TestQueryBadRequests(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	newAccount(t, l, "qb").ok("purchase_payg_contract", m{"contract_id": "qb-P"})
	natsCases := map[string]string{
		"bad json":        `{"account_id":`,
		"unknown field":   `{"account_id":"qb","bogus":1}`,
		"dot in account":  `{"account_id":"q.b"}`,
		"star in account": `{"account_id":"q*"}`,
		"gt in account":   `{"account_id":"q>"}`,
		"space":           `{"account_id":"q b"}`,
		"empty account":   `{"account_id":""}`,
		"long account":    `{"account_id":"` + strings.Repeat("a", 65) + `"}`,
		"negative min":    `{"account_id":"qb","min_position":-1}`,
		"string min":      `{"account_id":"qb","min_position":"1"}`,
	}
	for name, body := range natsCases {
		t.Run("nats "+name, func(t *testing.T) {
			t.Parallel()
			for _, q := range queryNames {
				r := decodeRejection(t, request(t, l, "ledger.query."+q, body))
				assert.Equal(t, "invalid_argument", r.Code, "%s %s", q, body)
			}
		})
	}
	httpCases := map[string]string{
		"dot in account":   "/v1/accounts/q.b/balance",
		"star in account":  "/v1/accounts/q*/licenses",
		"space":            "/v1/accounts/q%20b/switches",
		"long account":     "/v1/accounts/" + strings.Repeat("a", 65) + "/balance",
		"min not a number": "/v1/accounts/qb/balance?min_position=abc",
		"min negative":     "/v1/accounts/qb/balance?min_position=-1",
	}
	for name, path := range httpCases {
		t.Run("http "+name, func(t *testing.T) {
			t.Parallel()
			status, body := httpGet(t, l.HTTPURL()+path)
			assert.Equal(t, http.StatusBadRequest, status, "%s", body)
			var rej struct {
				OK    bool `json:"ok"`
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &rej), "%s", body)
			assert.False(t, rej.OK)
			assert.Equal(t, "invalid_argument", rej.Error.Code)
		})
	}
}

// TestReadYourWrites: a query with min_position = the command's position sees the command,
// every time, over NATS and HTTP alike.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "ryw")
	a.activeLicense("ryw-L", "1000")
	total := dec("0")
	for i := 0; i < 40; i++ {
		r := a.ok("allocate_credits", m{"feature": "file_security", "credits": "1.5"})
		total = total.Add(dec("1.5"))
		var b balance
		if i%2 == 0 {
			b = getBalance(t, l, a.id, r.Position)
		} else {
			status, body := queryHTTP(t, l, "balance", a.id, r.Position)
			require.Equal(t, http.StatusOK, status, "%s", body)
			require.NoError(t, json.Unmarshal(body, &b))
		}
		assert.GreaterOrEqual(t, b.Position, r.Position)
		require.Truef(t, total.Equal(b.AllocatedCredits), "iteration %d: allocated %s, want %s", i, b.AllocatedCredits, total)
	}
}

// TestMinPositionWaitIsBounded: a position the ledger never reaches answers unavailable (503)
// after the bounded wait instead of hanging.
func TestMinPositionWaitIsBounded(t *testing.T) {
	t.Parallel()
	// A short wait, so that this test does not hold the suite up.
	l := startLedger(t, func(c *server.Config) { c.QueryMaxWait = 300 * time.Millisecond })
	r := newAccount(t, l, "mp").ok("purchase_payg_contract", m{"contract_id": "mp-P"})
	far := r.Position + 1000
	start := time.Now()
	rej := decodeRejection(t, queryNATS(t, l, "balance", "mp", far))
	assert.Equal(t, "unavailable", rej.Code)
	status, body := queryHTTP(t, l, "licenses", "mp", far)
	assert.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
	assert.Less(t, time.Since(start), 5*time.Second, "the wait is bounded by QueryMaxWait")
}

// TestHealthz answers ok with the projection position.
func TestHealthz(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	r := newAccount(t, l, "hz").ok("purchase_payg_contract", m{"contract_id": "hz-P"})
	require.Eventually(t, func() bool {
		status, body := httpGet(t, l.HTTPURL()+"/healthz")
		var h struct {
			OK       bool   `json:"ok"`
			Position uint64 `json:"position"`
		}
		return status == http.StatusOK && json.Unmarshal(body, &h) == nil && h.OK && h.Position >= r.Position
	}, eventuallyWait, eventuallyTick)
}

// TestServiceDiscovery: the micro service answers $SRV.PING/INFO/STATS and lists every endpoint.
func TestServiceDiscovery(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	ping := request(t, l, "$SRV.PING.creditledger", "")
	var p struct {
		Name string `json:"name"`
	}
	require.NoError(t, json.Unmarshal(ping.Data, &p))
	assert.Equal(t, "creditledger", p.Name)

	var info struct {
		Name      string `json:"name"`
		Endpoints []struct {
			Subject string `json:"subject"`
		} `json:"endpoints"`
	}
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.INFO.creditledger", "").Data, &info))
	subjects := map[string]bool{}
	for _, e := range info.Endpoints {
		subjects[e.Subject] = true
	}
	for _, s := range []string{"purchase_license", "activate_license", "upgrade_contract", "allocate_credits", "release_credits",
		"set_auto_renew", "purchase_payg_contract", "activate_payg_contract", "switch_billing_model"} {
		assert.True(t, subjects["ledger.cmd."+s], "endpoint ledger.cmd.%s", s)
	}
	for _, q := range queryNames {
		assert.True(t, subjects["ledger.query."+q], "endpoint ledger.query.%s", q)
	}
	stats := request(t, l, "$SRV.STATS.creditledger", "")
	assert.Contains(t, string(stats.Data), `"endpoints"`)
}
