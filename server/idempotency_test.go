package server_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// retryCase is a command sent twice under one command_id.
type retryCase struct {
	name  string
	given func(a *account)
	cmd   string
	body  func(a *account) m
	// events the first reply carries.
	events []string
}

func retryCases() []retryCase {
	return []retryCase{
		{name: "purchase", cmd: "purchase_license",
			body:   func(a *account) m { return m{"license_id": a.id + "-L", "source": "sales", "credits": "10"} },
			events: []string{"LicensePurchased"}},
		{name: "allocate", given: func(a *account) { a.activeLicense(a.id+"-L", "100") }, cmd: "allocate_credits",
			body:   func(a *account) m { return m{"feature": "file_security", "credits": "10"} },
			events: []string{"CreditsAllocated"}},
		{name: "switch with release (two events)",
			given: func(a *account) {
				a.activeLicense(a.id+"-L", "100")
				a.activePayg(a.id + "-P")
				a.ok("allocate_credits", m{"feature": "container_security", "credits": "10"})
			},
			cmd:    "switch_billing_model",
			body:   func(a *account) m { return m{"feature": "container_security", "to": "payg"} },
			events: []string{"CreditsReleased", "BillingModelSwitched"}},
		{name: "past contract start (catch-up events)", cmd: "purchase_license",
			body: func(a *account) m {
				return m{"license_id": a.id + "-OLD", "source": "sales", "credits": "10", "contract_start": "2024-06-01T00:00:00Z"}
			},
			events: []string{"LicensePurchased", "LicenseRenewed"}},
		{name: "with expected_version", given: func(a *account) { a.activeLicense(a.id+"-L", "100") }, cmd: "allocate_credits",
			body:   func(a *account) m { return m{"feature": "file_security", "credits": "1", "expected_version": 2} },
			events: []string{"CreditsAllocated"}},
	}
}

// TestIdempotentRetry: the same command_id with the same body returns the first reply byte for
// byte and appends nothing, at once, an hour later and after a restart; a different body is
// idempotency_key_reused and appends nothing either.
func TestIdempotentRetry(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	type sent struct {
		a     *account
		body  m
		first accepted
	}
	cases := retryCases()
	all := make([]sent, len(cases))
	send := func(name string, body m) *nats.Msg { return request(t, l, "ledger.cmd."+name, body) }
	for i, tc := range cases {
		a := newAccount(t, l, "idem"+itoa(uint64(i)))
		if tc.given != nil {
			tc.given(a)
		}
		body := a.body(tc.body(a))
		first := decodeAccepted(t, send(tc.cmd, body))
		require.Equal(t, tc.events, first.types(), tc.name)
		all[i] = sent{a: a, body: body, first: first}
	}
	head := lastEvent(t, l) // the last event: a restart writes ownership records after it

	check := func(t *testing.T, when string) {
		for i, tc := range cases {
			s := all[i]
			again := decodeAccepted(t, send(tc.cmd, s.body))
			assert.Equal(t, string(s.first.raw), string(again.raw), "%s %s: identical first reply", tc.name, when)
			assert.Equal(t, "true", again.header.Get("Ledger-Replayed"), "%s %s", tc.name, when)

			changed := m{}
			for k, v := range s.body {
				changed[k] = v
			}
			changed["account_id"] = s.a.id + "x" // same id on another account is a different body too
			r := decodeRejection(t, send(tc.cmd, changed))
			assert.Equal(t, "idempotency_key_reused", r.Code, "%s %s", tc.name, when)
		}
		assert.Equal(t, head, lastEvent(t, l), "%s: retries append nothing", when)
	}
	check(t, "at once")
	l.Clock.Advance(time.Hour)
	check(t, "an hour later")
	restart(t, l)
	check(t, "after restart")
	l.Clock.Advance(time.Hour)
	restart(t, l)
	check(t, "after a second restart")

	// The next new command continues right after the head (the restarts' ownership records).
	next := streamHead(t, l) + 1
	r := all[1].a.ok("allocate_credits", m{"feature": "file_security", "credits": "1"})
	assert.Equal(t, next, r.Position)
	assert.Equal(t, all[1].first.Version+1, r.Version)
}

// TestIdempotencyBodyNormalisation: amounts spelled "10", 10, "10.0" and 10.0000 are the same
// body; field order does not matter; changing any other field is idempotency_key_reused.
func TestIdempotencyBodyNormalisation(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "norm")
	a.activeLicense("norm-L", "100")
	first := decodeAccepted(t, request(t, l, "ledger.cmd.allocate_credits",
		`{"command_id":"norm-fixed","account_id":"norm","feature":"file_security","credits":"10"}`))
	head := streamHead(t, l)
	same := []string{
		`{"command_id":"norm-fixed","account_id":"norm","feature":"file_security","credits":10}`,
		`{"command_id":"norm-fixed","account_id":"norm","feature":"file_security","credits":"10.0"}`,
		`{"command_id":"norm-fixed","account_id":"norm","feature":"file_security","credits":10.0000}`,
		`{"credits":"10","feature":"file_security","account_id":"norm","command_id":"norm-fixed"}`,
		"{\n  \"command_id\": \"norm-fixed\", \"account_id\": \"norm\", \"feature\": \"file_security\", \"credits\": \"10\"\n}",
	}
	for _, body := range same {
		again := decodeAccepted(t, request(t, l, "ledger.cmd.allocate_credits", body))
		assert.Equal(t, string(first.raw), string(again.raw), "same body: %s", body)
	}
	different := []string{
		`{"command_id":"norm-fixed","account_id":"norm","feature":"file_security","credits":"10.0001"}`,
		`{"command_id":"norm-fixed","account_id":"norm","feature":"container_security","credits":"10"}`,
	}
	for _, body := range different {
		r := decodeRejection(t, request(t, l, "ledger.cmd.allocate_credits", body))
		assert.Equal(t, "idempotency_key_reused", r.Code, "different body: %s", body)
	}
	// The same command_id under another command name is a different body as well.
	r := decodeRejection(t, request(t, l, "ledger.cmd.release_credits",
		`{"command_id":"norm-fixed","account_id":"norm","feature":"file_security","credits":"10"}`))
	assert.Equal(t, "idempotency_key_reused", r.Code)
	assert.Equal(t, head, streamHead(t, l), "nothing appended")
	b := getBalance(t, l, a.id, head)
	assertDec(t, "10", b.AllocatedCredits, "allocated once")
}

// TestConcurrentDuplicates: the same command sent by many goroutines at once is applied once and
// every sender gets the same reply.
func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "dup")
	a.activeLicense("dup-L", "100")
	head := streamHead(t, l)
	body := a.body(m{"feature": "container_security", "credits": "7"})
	const senders = 30
	replies := make([]*nats.Msg, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			replies[i], errs[i] = l.NC.Request("ledger.cmd.allocate_credits", mustJSON(body), requestTimeout)
		}(i)
	}
	wg.Wait()
	var first string
	for i := 0; i < senders; i++ {
		require.NoError(t, errs[i])
		r := decodeAccepted(t, replies[i])
		if first == "" {
			first = string(r.raw)
		}
		assert.Equal(t, first, string(r.raw), "every sender gets the same reply")
	}
	assert.Equal(t, head+1, streamHead(t, l), "one event appended")
	assertDec(t, "7", getBalance(t, l, a.id, head+1).AllocatedCredits)
}
