package server_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// malformedCase is one request that must be invalid_argument and append nothing.
type malformedCase struct {
	name string
	cmd  string
	body string
}

// meta is a valid command_id/account_id prefix for hand-written bodies.
const meta = `"command_id":"bad-1","account_id":"mal"`

func malformedCases() []malformedCase {
	long := func(n int) string { return strings.Repeat("a", n) }
	alloc := func(credits string) string {
		return `{` + meta + `,"feature":"file_security","credits":` + credits + `}`
	}
	purchase := func(extra string) string {
		return `{` + meta + `,"license_id":"mal-new","source":"sales","credits":"1"` + extra + `}`
	}
	withAccount := func(id string) string {
		return `{"command_id":"bad-1","account_id":` + id + `,"license_id":"mal-new","source":"sales","credits":"1"}`
	}
	cases := []malformedCase{
		// Not JSON, or not one object.
		{"empty body", "purchase_license", ``},
		{"truncated", "purchase_license", `{"command_id":"bad-1",`},
		{"not json", "purchase_license", `purchase please`},
		{"array", "purchase_license", `[]`},
		{"null", "purchase_license", `null`},
		{"string", "purchase_license", `"hello"`},
		{"trailing object", "purchase_license", purchase(``) + `{}`},
		{"single quotes", "purchase_license", `{'command_id':'bad-1'}`},
		{"oversized body", "purchase_license", purchase(``) + strings.Repeat(" ", 70*1024)},
		// Unknown or mistyped fields.
		{"unknown field", "purchase_license", purchase(`,"bogus":1`)},
		{"misspelled field", "allocate_credits", `{` + meta + `,"feature":"file_security","credit":"1"}`},
		{"license_id number", "activate_license", `{` + meta + `,"license_id":7}`},
		{"expected_version negative", "allocate_credits", `{` + meta + `,"feature":"file_security","credits":"1","expected_version":-1}`},
		{"expected_version string", "allocate_credits", `{` + meta + `,"feature":"file_security","credits":"1","expected_version":"1"}`},
		// command_id.
		{"missing command_id", "purchase_license", `{"account_id":"mal","license_id":"mal-new","source":"sales","credits":"1"}`},
		{"empty command_id", "purchase_license", `{"command_id":"","account_id":"mal","license_id":"mal-new","source":"sales","credits":"1"}`},
		{"command_id 129 chars", "purchase_license", `{"command_id":"` + long(129) + `","account_id":"mal","license_id":"mal-new","source":"sales","credits":"1"}`},
		{"command_id null", "purchase_license", `{"command_id":null,"account_id":"mal","license_id":"mal-new","source":"sales","credits":"1"}`},
		{"command_id number", "purchase_license", `{"command_id":5,"account_id":"mal","license_id":"mal-new","source":"sales","credits":"1"}`},
		{"command_id reserved prefix", "purchase_license", `{"command_id":"$time:mal:1","account_id":"mal","license_id":"mal-new","source":"sales","credits":"1"}`},
		// account_id.
		{"account dot", "purchase_license", withAccount(`"mal.x"`)},
		{"account star", "purchase_license", withAccount(`"mal*"`)},
		{"account gt", "purchase_license", withAccount(`"mal>"`)},
		{"account space", "purchase_license", withAccount(`"mal x"`)},
		{"account tab", "purchase_license", withAccount(`"mal\tx"`)},
		{"account empty", "purchase_license", withAccount(`""`)},
		{"account 65 chars", "purchase_license", withAccount(`"` + long(65) + `"`)},
		{"account non-ascii", "purchase_license", withAccount(`"malé"`)},
		{"account slash", "purchase_license", withAccount(`"mal/x"`)},
		{"account missing", "purchase_license", `{"command_id":"bad-1","license_id":"mal-new","source":"sales","credits":"1"}`},
		// Other ids.
		{"license_id dot", "purchase_license", `{` + meta + `,"license_id":"L.1","source":"sales","credits":"1"}`},
		{"license_id wildcard", "activate_license", `{` + meta + `,"license_id":"*"}`},
		{"license_id missing", "activate_license", `{` + meta + `}`},
		{"feature gt", "allocate_credits", `{` + meta + `,"feature":"file>","credits":"1"}`},
		{"feature missing", "allocate_credits", `{` + meta + `,"credits":"1"}`},
		{"contract_id space", "purchase_payg_contract", `{` + meta + `,"contract_id":"P 1"}`},
		{"item_id dot", "upgrade_contract", `{` + meta + `,"license_id":"mal-L","additional_credits":"1","item_id":"a.b"}`},
		// Amounts.
		{"credits missing", "allocate_credits", `{` + meta + `,"feature":"file_security"}`},
		{"negative number", "allocate_credits", alloc(`-1`)},
		{"negative string", "allocate_credits", alloc(`"-1"`)},
		{"zero number", "allocate_credits", alloc(`0`)},
		{"zero string", "allocate_credits", alloc(`"0"`)},
		{"zero fraction", "allocate_credits", alloc(`"0.0000"`)},
		{"five fractional digits", "allocate_credits", alloc(`"1.00001"`)},
		{"five fractional digits number", "allocate_credits", alloc(`1.00001`)},
		{"tiny", "allocate_credits", alloc(`"0.00001"`)},
		{"1e13 string", "allocate_credits", alloc(`"1e13"`)},
		{"1e13 number", "allocate_credits", alloc(`1e13`)},
		{"just over 1e12", "allocate_credits", alloc(`"1000000000000.0001"`)},
		{"huge", "allocate_credits", alloc(`"` + strings.Repeat("9", 40) + `"`)},
		{"abc", "allocate_credits", alloc(`"abc"`)},
		{"empty string", "allocate_credits", alloc(`""`)},
		{"null", "allocate_credits", alloc(`null`)},
		{"true", "allocate_credits", alloc(`true`)},
		{"object", "allocate_credits", alloc(`{}`)},
		{"array", "allocate_credits", alloc(`["1"]`)},
		{"leading space", "allocate_credits", alloc(`" 1"`)},
		{"comma decimal", "allocate_credits", alloc(`"1,5"`)},
		{"hex", "allocate_credits", alloc(`"0x10"`)},
		{"NaN", "allocate_credits", alloc(`"NaN"`)},
		{"Infinity", "allocate_credits", alloc(`"Infinity"`)},
		{"plus sign", "allocate_credits", alloc(`"+1"`)},
		{"leading dot", "allocate_credits", alloc(`".5"`)},
		{"trailing dot", "allocate_credits", alloc(`"5."`)},
		{"negative purchase credits", "purchase_license", `{` + meta + `,"license_id":"mal-new","source":"sales","credits":"-10"}`},
		{"over-precise upgrade", "upgrade_contract", `{` + meta + `,"license_id":"mal-L","additional_credits":"0.00001"}`},
		{"negative release", "release_credits", `{` + meta + `,"feature":"file_security","credits":-1}`},
		{"zero payg rate", "purchase_payg_contract", `{` + meta + `,"contract_id":"mal-P","rates":{"file_security":"0"}}`},
		{"payg rate not a number", "purchase_payg_contract", `{` + meta + `,"contract_id":"mal-P","rates":{"file_security":"cheap"}}`},
		// Other fields.
		{"unknown source", "purchase_license", `{` + meta + `,"license_id":"mal-new","source":"ebay","credits":"1"}`},
		{"source missing", "purchase_license", `{` + meta + `,"license_id":"mal-new","credits":"1"}`},
		{"term_months zero", "purchase_license", purchase(`,"term_months":0`)},
		{"term_months negative", "purchase_license", purchase(`,"term_months":-12`)},
		{"term_months fractional", "purchase_license", purchase(`,"term_months":1.5`)},
		{"term_months huge", "purchase_license", purchase(`,"term_months":100000`)},
		{"auto_renew string", "purchase_license", purchase(`,"auto_renew":"yes"`)},
		{"contract_start not RFC 3339", "purchase_license", purchase(`,"contract_start":"15/01/2026"`)},
		{"contract_start date only", "purchase_license", purchase(`,"contract_start":"2026-01-15"`)},
		{"contract_start year 1", "purchase_license", purchase(`,"contract_start":"0001-01-01T00:00:00Z"`)},
		{"azure credits below 3", "purchase_license", `{` + meta + `,"license_id":"mal-new","source":"azure_marketplace","credits":"2"}`},
		{"azure credits fractional", "purchase_license", `{` + meta + `,"license_id":"mal-new","source":"azure_marketplace","credits":"10.5"}`},
		{"azure credits above 1000000", "purchase_license", `{` + meta + `,"license_id":"mal-new","source":"azure_marketplace","credits":"1000001"}`},
		{"set_auto_renew enabled missing", "set_auto_renew", `{` + meta + `,"license_id":"mal-L"}`},
		{"set_auto_renew enabled string", "set_auto_renew", `{` + meta + `,"license_id":"mal-L","enabled":"false"}`},
		{"switch to unknown model", "switch_billing_model", `{` + meta + `,"feature":"file_security","to":"free"}`},
		{"switch to missing", "switch_billing_model", `{` + meta + `,"feature":"file_security"}`},
		{"item_id on a sales license", "upgrade_contract", `{` + meta + `,"license_id":"mal-L","additional_credits":"1","item_id":"mal-item"}`},
	}
	return cases
}

// TestMalformedCommands: every malformed request is invalid_argument with the micro error
// headers set, and the stream head does not move.
func TestMalformedCommands(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "mal")
	a.activeLicense("mal-L", "100")
	head := streamHead(t, l)
	for _, tc := range malformedCases() {
		t.Run(tc.cmd+"/"+tc.name, func(t *testing.T) {
			r := decodeRejection(t, request(t, l, "ledger.cmd."+tc.cmd, tc.body))
			assert.Equal(t, "invalid_argument", r.Code, "body %.200s: %s", tc.body, r.raw)
			assert.Equal(t, head, streamHead(t, l), "a malformed command appends nothing")
		})
	}
	assert.Equal(t, head, l.Head())
	ls := getLicenses(t, l, a.id, head)
	assert.Len(t, ls.Licenses, 1, "no license was created by a malformed purchase")
	// Nothing malformed was remembered as an idempotency key: the id is free for a valid command.
	decodeAccepted(t, request(t, l, "ledger.cmd.allocate_credits", alloc1("bad-1")))
}

func alloc1(commandID string) string {
	return `{"command_id":"` + commandID + `","account_id":"mal","feature":"file_security","credits":"1"}`
}

// TestWellFormedEdgeValues: the limits themselves are accepted.
func TestWellFormedEdgeValues(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	long := func(n int) string { return strings.Repeat("b", n) }
	cases := []struct {
		name, cmd, body, credits string
	}{
		{"number literal 12.5", "purchase_license", `{"command_id":"e1","account_id":"edge","license_id":"e1","source":"sales","credits":12.5}`, "12.5"},
		{"four fractional digits", "purchase_license", `{"command_id":"e2","account_id":"edge","license_id":"e2","source":"sales","credits":"0.0001"}`, "0.0001"},
		{"exactly 1e12 string", "purchase_license", `{"command_id":"e3","account_id":"edge","license_id":"e3","source":"sales","credits":"1000000000000"}`, "1000000000000"},
		{"exactly 1e12 number", "purchase_license", `{"command_id":"e4","account_id":"edge","license_id":"e4","source":"sales","credits":1000000000000}`, "1000000000000"},
		{"exponent number", "purchase_license", `{"command_id":"e5","account_id":"edge","license_id":"e5","source":"sales","credits":1.5e2}`, "150"},
		{"trailing zeros", "purchase_license", `{"command_id":"e6","account_id":"edge","license_id":"e6","source":"sales","credits":"7.5000"}`, "7.5"},
		{"command_id 128 chars", "purchase_license", `{"command_id":"` + long(128) + `","account_id":"edge","license_id":"e7","source":"sales","credits":"1"}`, "1"},
		{"account_id 64 chars", "purchase_license", `{"command_id":"e8","account_id":"` + long(64) + `","license_id":"e8","source":"sales","credits":"1"}`, "1"},
		{"ids with _ and -", "purchase_license", `{"command_id":"e9","account_id":"Edge_9-x","license_id":"L_9-x","source":"sales","credits":"1"}`, "1"},
		{"azure 3 users", "purchase_license", `{"command_id":"e10","account_id":"edge","license_id":"e10","source":"azure_marketplace","credits":"3"}`, "3"},
		{"azure 1000000 users", "purchase_license", `{"command_id":"e11","account_id":"edge","license_id":"e11","source":"azure_marketplace","credits":1000000}`, "1000000"},
		{"azure whole number with zeros", "purchase_license", `{"command_id":"e12","account_id":"edge","license_id":"e12","source":"azure_marketplace","credits":"5.00"}`, "5"},
		{"term 120 months", "purchase_license", `{"command_id":"e13","account_id":"edge","license_id":"e13","source":"sales","credits":"1","term_months":120}`, "1"},
		{"command_id with spaces and unicode", "purchase_license", `{"command_id":"order 42 / façade","account_id":"edge","license_id":"e14","source":"sales","credits":"1"}`, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := decodeAccepted(t, request(t, l, "ledger.cmd."+tc.cmd, tc.body))
			var body struct {
				LicenseID string `json:"license_id"`
			}
			require.NoError(t, json.Unmarshal([]byte(tc.body), &body))
			it, ok := getLicenses(t, l, r.AccountID, r.Position).byID(body.LicenseID)
			require.True(t, ok)
			assertDec(t, tc.credits, dec(it.Credits))
		})
	}
}

// TestUnknownCommandHasNoResponder: only the nine commands are served.
func TestUnknownCommandHasNoResponder(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	_, err := l.NC.Request("ledger.cmd.spend_credits", []byte(alloc1("x")), 2*time.Second)
	require.Error(t, err)
	assert.True(t, errors.Is(err, nats.ErrNoResponders), "%v", err)
}
