package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
)

// TestEveryCommandAccepted walks one account through every command over raw NATS and checks the
// reply of each: exact shape, event types, and version/position advancing with the stream.
func TestEveryCommandAccepted(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "acct-all")
	steps := []struct {
		name   string
		fields m
		want   []string
	}{
		{"purchase_license", m{"license_id": "acct-all-L1", "source": "sales", "credits": "1000", "term_months": 12, "auto_renew": true, "contract_start": rfc3339(testledger.Epoch)}, []string{"LicensePurchased"}},
		{"activate_license", m{"license_id": "acct-all-L1"}, []string{"LicenseActivated"}},
		{"upgrade_contract", m{"license_id": "acct-all-L1", "additional_credits": "500"}, []string{"ContractUpgraded"}},
		{"purchase_license", m{"license_id": "acct-all-AWS", "source": "aws_marketplace", "credits": "20.5"}, []string{"LicensePurchased"}},
		{"activate_license", m{"license_id": "acct-all-AWS"}, []string{"LicenseActivated"}},
		{"purchase_license", m{"license_id": "acct-all-AZ", "source": "azure_marketplace", "credits": "10"}, []string{"LicensePurchased"}},
		{"activate_license", m{"license_id": "acct-all-AZ"}, []string{"LicenseActivated"}},
		{"upgrade_contract", m{"license_id": "acct-all-AZ", "additional_credits": "5", "item_id": "acct-all-AZ-extra"}, []string{"ContractUpgraded"}},
		{"upgrade_contract", m{"license_id": "acct-all-AZ", "additional_credits": 3}, []string{"ContractUpgraded"}},
		{"allocate_credits", m{"feature": "container_security", "credits": "300"}, []string{"CreditsAllocated"}},
		{"allocate_credits", m{"feature": "endpoint_security_core", "credits": 12.5}, []string{"CreditsAllocated"}},
		{"release_credits", m{"feature": "container_security", "credits": "100"}, []string{"CreditsReleased"}},
		{"set_auto_renew", m{"license_id": "acct-all-L1", "enabled": false}, []string{"AutoRenewSet"}},
		{"set_auto_renew", m{"license_id": "acct-all-L1", "enabled": true}, []string{"AutoRenewSet"}},
		{"purchase_payg_contract", m{"contract_id": "acct-all-P1", "rates": m{"container_security": "0.05", "file_security": 0.2}}, []string{"PaygContractPurchased"}},
		{"activate_payg_contract", m{"contract_id": "acct-all-P1"}, []string{"PaygContractActivated"}},
		// To payg also releases the feature's credits in the same atomic append.
		{"switch_billing_model", m{"feature": "container_security", "to": "payg"}, []string{"CreditsReleased", "BillingModelSwitched"}},
		{"switch_billing_model", m{"feature": "file_security", "to": "payg"}, []string{"BillingModelSwitched"}},
	}
	var version, position uint64
	for i, s := range steps {
		r := a.ok(s.name, s.fields)
		require.Equal(t, s.want, r.types(), "step %d %s", i, s.name)
		assert.Equal(t, version+uint64(len(s.want)), r.Version, "step %d %s: version is the account's event count", i, s.name)
		assert.Greater(t, r.Events[0].Position, position, "step %d %s: positions grow", i, s.name)
		assert.Equal(t, l.Head(), r.Position, "step %d %s: reply position is the stream head", i, s.name)
		version, position = r.Version, r.Position
	}
	require.Equal(t, position, streamHead(t, l), "JetStream holds exactly the acknowledged events")

	b := getBalance(t, l, a.id, position)
	assertDec(t, "1538.5", b.TotalCredits, "1000+500 sales, 20.5 aws, 10+5+3 azure")
	assertDec(t, "12.5", b.AllocatedCredits)
	assertDec(t, "1526", b.AvailableCredits)
	assertDec(t, "0", b.Shortfall)
	require.Len(t, b.Allocations, 1, "container_security's credits were released by the switch")
	assertDec(t, "12.5", b.Allocations["endpoint_security_core"])

	sw := getSwitches(t, l, a.id, position)
	assert.Equal(t, "payg", sw.Features["container_security"].BillingModel)
	assert.Equal(t, "payg", sw.Features["file_security"].BillingModel)
	assert.Equal(t, "credits", sw.Features["cloud_account_assessment"].BillingModel)
	assert.Equal(t, "credits", sw.Features["advanced_server_workload_protection"].BillingModel)
}

// rejectCase is one rejection reachable from outside: given some accepted commands on a fresh
// account, when one more command is sent, then it is rejected with code and appends nothing.
type rejectCase struct {
	name   string
	given  func(a *account)
	cmd    string
	fields m
	// when overrides the command sent (for a fixed command_id); cmd/fields are ignored then.
	when func(a *account) *nats.Msg
	code string
	// check inspects the rejection further.
	check func(t *testing.T, a *account, r rejection)
}

func rejectCases() []rejectCase {
	lic := func(a *account, id string) string { return a.id + "-" + id }
	return []rejectCase{
		{name: "invalid_argument negative credits", cmd: "allocate_credits",
			fields: m{"feature": "container_security", "credits": "-5"}, code: "invalid_argument"},
		{name: "invalid_argument azure credits below 3",
			when: func(a *account) *nats.Msg {
				return a.send("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "2"})
			}, code: "invalid_argument"},
		{name: "invalid_argument azure credits fractional",
			when: func(a *account) *nats.Msg {
				return a.send("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "3.5"})
			}, code: "invalid_argument"},
		{name: "invalid_argument azure credits above 1000000",
			when: func(a *account) *nats.Msg {
				return a.send("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "1000001"})
			}, code: "invalid_argument"},
		{name: "invalid_argument azure upgrade past 1000000",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "999999"})
				a.ok("activate_license", m{"license_id": lic(a, "AZ")})
			},
			when: func(a *account) *nats.Msg {
				return a.send("upgrade_contract", m{"license_id": lic(a, "AZ"), "additional_credits": "2"})
			}, code: "invalid_argument"},
		{name: "not_found activate unknown license", cmd: "activate_license", fields: m{"license_id": "nope"}, code: "not_found"},
		{name: "not_found upgrade unknown license", cmd: "upgrade_contract", fields: m{"license_id": "nope", "additional_credits": "1"}, code: "not_found"},
		{name: "not_found set_auto_renew unknown license", cmd: "set_auto_renew", fields: m{"license_id": "nope", "enabled": true}, code: "not_found"},
		{name: "not_found activate unknown payg contract", cmd: "activate_payg_contract", fields: m{"contract_id": "nope"}, code: "not_found"},
		{name: "not_found activating another account's license",
			given: func(a *account) {
				other := newAccount(a.t, a.l, a.id+"-other")
				other.ok("purchase_license", m{"license_id": lic(a, "THEIRS"), "source": "sales", "credits": "10"})
			},
			when: func(a *account) *nats.Msg {
				return a.send("activate_license", m{"license_id": lic(a, "THEIRS")})
			}, code: "not_found"},
		{name: "already_exists same account",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "L"), "source": "sales", "credits": "10"})
			},
			when: func(a *account) *nats.Msg {
				return a.send("purchase_license", m{"license_id": lic(a, "L"), "source": "sales", "credits": "10"})
			}, code: "already_exists"},
		{name: "already_exists license held by another account",
			given: func(a *account) {
				other := newAccount(a.t, a.l, a.id+"-other")
				other.ok("purchase_license", m{"license_id": lic(a, "THEIRS"), "source": "sales", "credits": "10"})
			},
			when: func(a *account) *nats.Msg {
				return a.send("purchase_license", m{"license_id": lic(a, "THEIRS"), "source": "aws_marketplace", "credits": "99"})
			}, code: "already_exists"},
		{name: "already_exists payg contract",
			given: func(a *account) { a.ok("purchase_payg_contract", m{"contract_id": lic(a, "P")}) },
			when: func(a *account) *nats.Msg {
				return a.send("purchase_payg_contract", m{"contract_id": lic(a, "P")})
			}, code: "already_exists"},
		{name: "already_exists azure item id",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "10"})
				a.ok("activate_license", m{"license_id": lic(a, "AZ")})
				a.ok("upgrade_contract", m{"license_id": lic(a, "AZ"), "additional_credits": "5", "item_id": lic(a, "ITEM")})
			},
			when: func(a *account) *nats.Msg {
				return a.send("upgrade_contract", m{"license_id": lic(a, "AZ"), "additional_credits": "5", "item_id": lic(a, "ITEM")})
			}, code: "already_exists"},
		{name: "already_exists payg contract held by another account",
			given: func(a *account) {
				newAccount(a.t, a.l, a.id+"-other").ok("purchase_payg_contract", m{"contract_id": lic(a, "THEIRS")})
			},
			when: func(a *account) *nats.Msg {
				return a.send("purchase_payg_contract", m{"contract_id": lic(a, "THEIRS")})
			}, code: "already_exists"},
		{name: "already_exists azure item id held by another account",
			given: func(a *account) {
				newAccount(a.t, a.l, a.id+"-other").ok("purchase_license", m{"license_id": lic(a, "THEIRS"), "source": "sales", "credits": "1"})
				a.ok("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "10"})
				a.ok("activate_license", m{"license_id": lic(a, "AZ")})
			},
			when: func(a *account) *nats.Msg {
				return a.send("upgrade_contract", m{"license_id": lic(a, "AZ"), "additional_credits": "5", "item_id": lic(a, "THEIRS")})
			}, code: "already_exists"},
		{name: "invalid_argument upgrading an azure item instead of its license",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "10"})
				a.ok("activate_license", m{"license_id": lic(a, "AZ")})
				a.ok("upgrade_contract", m{"license_id": lic(a, "AZ"), "additional_credits": "5", "item_id": lic(a, "ITEM")})
			},
			when: func(a *account) *nats.Msg {
				return a.send("upgrade_contract", m{"license_id": lic(a, "ITEM"), "additional_credits": "5"})
			}, code: "invalid_argument"},
		{name: "invalid_argument auto-renew on an azure item",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "AZ"), "source": "azure_marketplace", "credits": "10"})
				a.ok("activate_license", m{"license_id": lic(a, "AZ")})
				a.ok("upgrade_contract", m{"license_id": lic(a, "AZ"), "additional_credits": "5", "item_id": lic(a, "ITEM")})
			},
			when: func(a *account) *nats.Msg {
				return a.send("set_auto_renew", m{"license_id": lic(a, "ITEM"), "enabled": false})
			}, code: "invalid_argument"},
		{name: "already_activated license",
			given: func(a *account) { a.activeLicense(lic(a, "L"), "10") },
			when: func(a *account) *nats.Msg {
				return a.send("activate_license", m{"license_id": lic(a, "L")})
			}, code: "already_activated"},
		{name: "already_activated payg contract",
			given: func(a *account) { a.activePayg(lic(a, "P")) },
			when: func(a *account) *nats.Msg {
				return a.send("activate_payg_contract", m{"contract_id": lic(a, "P")})
			}, code: "already_activated"},
		{name: "license_expired activate",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "OLD"), "source": "sales", "credits": "10", "auto_renew": false,
					"contract_start": rfc3339(testledger.Epoch.AddDate(-1, -1, 0))})
			},
			when: func(a *account) *nats.Msg {
				return a.send("activate_license", m{"license_id": lic(a, "OLD")})
			}, code: "license_expired"},
		{name: "license_expired upgrade",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "OLD"), "source": "sales", "credits": "10", "auto_renew": false,
					"contract_start": rfc3339(testledger.Epoch.AddDate(-1, -1, 0))})
			},
			when: func(a *account) *nats.Msg {
				return a.send("upgrade_contract", m{"license_id": lic(a, "OLD"), "additional_credits": "1"})
			}, code: "license_expired"},
		{name: "license_expired set_auto_renew",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "OLD"), "source": "sales", "credits": "10", "auto_renew": false,
					"contract_start": rfc3339(testledger.Epoch.AddDate(-1, -1, 0))})
			},
			when: func(a *account) *nats.Msg {
				return a.send("set_auto_renew", m{"license_id": lic(a, "OLD"), "enabled": true})
			}, code: "license_expired"},
		{name: "license_not_active upgrade of a pending license",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "L"), "source": "sales", "credits": "10"})
			},
			when: func(a *account) *nats.Msg {
				return a.send("upgrade_contract", m{"license_id": lic(a, "L"), "additional_credits": "1"})
			}, code: "license_not_active"},
		{name: "insufficient_credits",
			given: func(a *account) {
				a.activeLicense(lic(a, "L"), "100")
				a.ok("allocate_credits", m{"feature": "file_security", "credits": "40"})
			},
			cmd: "allocate_credits", fields: m{"feature": "container_security", "credits": "60.0001"}, code: "insufficient_credits",
			check: func(t *testing.T, a *account, r rejection) {
				assert.Equal(t, "60", r.Data["available"])
				assert.Equal(t, "60.0001", r.Data["requested"])
			}},
		{name: "insufficient_credits pending license is not in the pool",
			given: func(a *account) {
				a.ok("purchase_license", m{"license_id": lic(a, "L"), "source": "sales", "credits": "100"})
			},
			cmd: "allocate_credits", fields: m{"feature": "container_security", "credits": "1"}, code: "insufficient_credits"},
		{name: "insufficient_allocation",
			given: func(a *account) {
				a.activeLicense(lic(a, "L"), "100")
				a.ok("allocate_credits", m{"feature": "container_security", "credits": "10"})
			},
			cmd: "release_credits", fields: m{"feature": "container_security", "credits": "10.5"}, code: "insufficient_allocation",
			check: func(t *testing.T, a *account, r rejection) {
				assert.Equal(t, "10", r.Data["allocated"])
				assert.Equal(t, "10.5", r.Data["requested"])
			}},
		{name: "insufficient_allocation feature without allocation",
			cmd: "release_credits", fields: m{"feature": "email_security", "credits": "1"}, code: "insufficient_allocation"},
		{name: "unknown_feature allocate", given: func(a *account) { a.activeLicense(lic(a, "L"), "100") },
			cmd: "allocate_credits", fields: m{"feature": "quantum_security", "credits": "1"}, code: "unknown_feature"},
		{name: "unknown_feature release", cmd: "release_credits", fields: m{"feature": "quantum_security", "credits": "1"}, code: "unknown_feature"},
		{name: "unknown_feature switch", given: func(a *account) { a.activePayg(lic(a, "P")) },
			cmd: "switch_billing_model", fields: m{"feature": "quantum_security", "to": "payg"}, code: "unknown_feature"},
		{name: "unknown_feature payg rates", cmd: "purchase_payg_contract",
			fields: m{"contract_id": "P", "rates": m{"quantum_security": "1"}}, code: "unknown_feature"},
		{name: "feature_not_payg_eligible switch", given: func(a *account) { a.activePayg(lic(a, "P")) },
			cmd: "switch_billing_model", fields: m{"feature": "endpoint_security_core", "to": "payg"}, code: "feature_not_payg_eligible"},
		{name: "feature_not_payg_eligible payg rates", cmd: "purchase_payg_contract",
			fields: m{"contract_id": "P", "rates": m{"email_security": "1"}}, code: "feature_not_payg_eligible"},
		{name: "feature_on_payg",
			given: func(a *account) {
				a.activeLicense(lic(a, "L"), "100")
				a.activePayg(lic(a, "P"))
				a.ok("switch_billing_model", m{"feature": "container_security", "to": "payg"})
			},
			cmd: "allocate_credits", fields: m{"feature": "container_security", "credits": "1"}, code: "feature_on_payg"},
		{name: "no_active_payg_contract without contract",
			cmd: "switch_billing_model", fields: m{"feature": "container_security", "to": "payg"}, code: "no_active_payg_contract"},
		{name: "no_active_payg_contract with a contract not activated",
			given: func(a *account) { a.ok("purchase_payg_contract", m{"contract_id": lic(a, "P")}) },
			cmd:   "switch_billing_model", fields: m{"feature": "file_security", "to": "payg"}, code: "no_active_payg_contract"},
		{name: "switch_too_soon",
			given: func(a *account) {
				a.activePayg(lic(a, "P"))
				a.ok("switch_billing_model", m{"feature": "cloud_account_assessment", "to": "payg"})
			},
			cmd: "switch_billing_model", fields: m{"feature": "cloud_account_assessment", "to": "credits"}, code: "switch_too_soon",
			check: func(t *testing.T, a *account, r rejection) {
				next := rfc3339(a.l.Clock.Now().Add(30 * 24 * time.Hour))
				assert.Contains(t, r.Message, next, "message gives the next allowed time")
				assert.Equal(t, next, r.Data["next_switch_allowed_at"])
			}},
		{name: "already_on_model credits", cmd: "switch_billing_model",
			fields: m{"feature": "advanced_server_workload_protection", "to": "credits"}, code: "already_on_model"},
		{name: "already_on_model payg",
			given: func(a *account) {
				a.activePayg(lic(a, "P"))
				a.ok("switch_billing_model", m{"feature": "file_security", "to": "payg"})
			},
			cmd: "switch_billing_model", fields: m{"feature": "file_security", "to": "payg"}, code: "already_on_model"},
		{name: "version_conflict stale expected_version",
			given: func(a *account) { a.activeLicense(lic(a, "L"), "100") },
			cmd:   "allocate_credits", fields: m{"feature": "file_security", "credits": "1", "expected_version": 1}, code: "version_conflict"},
		{name: "version_conflict expected_version ahead",
			given: func(a *account) { a.activeLicense(lic(a, "L"), "100") },
			cmd:   "allocate_credits", fields: m{"feature": "file_security", "credits": "1", "expected_version": 3}, code: "version_conflict"},
		{name: "version_conflict on a new account",
			cmd: "purchase_license", fields: m{"license_id": "X", "source": "sales", "credits": "1", "expected_version": 1}, code: "version_conflict"},
		{name: "idempotency_key_reused",
			given: func(a *account) {
				decodeAccepted(a.t, request(a.t, a.l, "ledger.cmd.purchase_license", m{"command_id": a.id + "-fixed", "account_id": a.id,
					"license_id": lic(a, "L"), "source": "sales", "credits": "10"}))
			},
			when: func(a *account) *nats.Msg {
				return request(a.t, a.l, "ledger.cmd.purchase_license", m{"command_id": a.id + "-fixed", "account_id": a.id,
					"license_id": lic(a, "L"), "source": "sales", "credits": "11"})
			}, code: "idempotency_key_reused"},
	}
}

// TestEveryRejectionCode reaches every business rejection from outside and checks that a
// rejection appends nothing. The cases share one ledger and run in order, so the stream head
// is stable around each rejected command.
func TestEveryRejectionCode(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	seen := map[string]bool{}
	for i, tc := range rejectCases() {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccount(t, l, fmt.Sprintf("rej%02d", i))
			if tc.given != nil {
				tc.given(a)
			}
			head := streamHead(t, l)
			var msg *nats.Msg
			if tc.when != nil {
				msg = tc.when(a)
			} else {
				msg = a.send(tc.cmd, tc.fields)
			}
			r := decodeRejection(t, msg)
			assert.Equal(t, tc.code, r.Code, "rejection %s", r.raw)
			if tc.check != nil {
				tc.check(t, a, r)
			}
			assert.Equal(t, head, streamHead(t, l), "a rejected command appends nothing")
			assert.Equal(t, head, l.Head())
			seen[r.Code] = true
		})
	}
	for _, code := range []string{"invalid_argument", "not_found", "already_exists", "already_activated", "license_expired",
		"license_not_active", "insufficient_credits", "insufficient_allocation", "unknown_feature", "feature_not_payg_eligible",
		"feature_on_payg", "no_active_payg_contract", "switch_too_soon", "already_on_model", "version_conflict",
		"idempotency_key_reused"} {
		assert.True(t, seen[code], "code %s reached", code)
	}
}

// TestExpectedVersionCurrentIsAccepted: a caller with a fresh version is not refused.
func TestExpectedVersionCurrentIsAccepted(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "ev")
	r := a.ok("purchase_license", m{"license_id": "ev-L", "source": "sales", "credits": "10", "expected_version": 0})
	r = a.ok("activate_license", m{"license_id": "ev-L", "expected_version": r.Version})
	r = a.ok("allocate_credits", m{"feature": "file_security", "credits": "1", "expected_version": r.Version})
	assert.Equal(t, uint64(3), r.Version)
}

// TestAWSActivationWindow: activation exactly four hours after purchase is in time, a second
// later is activation_window_expired; sales and Azure licenses have no window.
func TestAWSActivationWindow(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "aws")
	for _, id := range []string{"aws-ontime", "aws-late"} {
		a.ok("purchase_license", m{"license_id": id, "source": "aws_marketplace", "credits": "100"})
	}
	a.ok("purchase_license", m{"license_id": "aws-sales", "source": "sales", "credits": "100"})
	a.ok("purchase_license", m{"license_id": "aws-azure", "source": "azure_marketplace", "credits": "100"})

	l.Clock.Advance(4 * time.Hour)
	a.ok("activate_license", m{"license_id": "aws-ontime"})

	l.Clock.Advance(time.Second)
	head := streamHead(t, l)
	r := a.reject("activate_license", m{"license_id": "aws-late"}, "activation_window_expired")
	assert.Contains(t, r.Message, "4 hours")
	assert.Equal(t, head, streamHead(t, l), "a rejected activation appends nothing")

	l.Clock.Advance(30 * 24 * time.Hour)
	a.ok("activate_license", m{"license_id": "aws-sales"})
	a.ok("activate_license", m{"license_id": "aws-azure"})
	ls := getLicenses(t, l, a.id, l.Head())
	late, ok := ls.byID("aws-late")
	require.True(t, ok)
	assert.Equal(t, "pending", late.Status)
}

// TestSwitchAfterThirtyDays: the 30-day rule counts per feature from its last switch.
func TestSwitchAfterThirtyDays(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "sw30")
	a.activePayg("sw30-P")
	start := l.Clock.Now()
	a.ok("switch_billing_model", m{"feature": "container_security", "to": "payg"})

	l.Clock.Advance(30*24*time.Hour - time.Second)
	a.reject("switch_billing_model", m{"feature": "container_security", "to": "credits"}, "switch_too_soon")
	a.ok("switch_billing_model", m{"feature": "file_security", "to": "payg"}) // another feature is not held back

	l.Clock.Advance(time.Second)
	r := a.ok("switch_billing_model", m{"feature": "container_security", "to": "credits"})

	sw := getSwitches(t, l, a.id, r.Position)
	cs := sw.Features["container_security"]
	assert.Equal(t, "credits", cs.BillingModel)
	require.Len(t, cs.History, 2)
	assert.Equal(t, switchEntry{From: "credits", To: "payg", At: start}, cs.History[0])
	assert.Equal(t, switchEntry{From: "payg", To: "credits", At: start.Add(30 * 24 * time.Hour)}, cs.History[1])
	require.NotNil(t, cs.NextSwitchAllowedAt)
	assert.Equal(t, start.Add(60*24*time.Hour), *cs.NextSwitchAllowedAt)

	// Back on credits, the feature takes allocations again; file_security on payg still does not.
	a.activeLicense("sw30-L", "10")
	a.ok("allocate_credits", m{"feature": "container_security", "credits": "4"})
	a.reject("allocate_credits", m{"feature": "file_security", "credits": "4"}, "feature_on_payg")
}
