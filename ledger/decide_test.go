package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// acct is the account every table test decides on.
const acct = "acc-1"

// t0 is the reference instant of the tables; every other time is derived from it.
var t0 = time.Date(2025, time.March, 10, 9, 0, 0, 0, time.UTC)

var rules = ledger.NewRules(ledger.DefaultCatalogue())

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// fold evolves a history onto a fresh account, numbering versions from 1.
func fold(history ...events.Payload) ledger.Account {
	return apply(ledger.NewAccount(acct), history...)
}

// apply evolves payloads onto a, continuing its version numbering. It takes ownership of a.
func apply(a ledger.Account, ps ...events.Payload) ledger.Account {
	for _, p := range ps {
		a = ledger.Evolve(a, events.Event{
			Envelope: events.Envelope{AccountID: acct, Type: p.EventType(), Version: a.Version + 1},
			Data:     p,
		})
	}
	return a
}

// hist flattens payloads and payload slices into one history.
func hist(parts ...any) []events.Payload {
	var out []events.Payload
	for _, p := range parts {
		switch v := p.(type) {
		case events.Payload:
			out = append(out, v)
		case []events.Payload:
			out = append(out, v...)
		default:
			panic("hist: not a payload")
		}
	}
	return out
}

// wire renders payloads as "Type json" lines, so decimals compare by value whatever their scale.
func wire(t testing.TB, ps []events.Payload) []string {
	t.Helper()
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		b, err := events.EncodePayload(p)
		require.NoError(t, err)
		out = append(out, p.EventType()+" "+string(b))
	}
	return out
}

func assertPayloads(t testing.TB, want, got []events.Payload) {
	t.Helper()
	assert.Equal(t, wire(t, want), wire(t, got))
}

func assertDecimal(t testing.TB, want string, got decimal.Decimal, what string) {
	t.Helper()
	assert.Truef(t, dec(want).Equal(got), "%s: want %s, got %s", what, want, got)
}

// History builders: the payloads Decide itself would have produced.

func purchased(id, source, credits string, autoRenew bool, at time.Time) events.LicensePurchased {
	return events.LicensePurchased{
		LicenseID: id, Source: source, Credits: dec(credits), TermMonths: 12, AutoRenew: autoRenew,
		ContractStart: at, PurchasedAt: at, ExpiresAt: at.AddDate(0, 12, 0),
	}
}

func activated(id string, at time.Time) events.LicenseActivated {
	return events.LicenseActivated{LicenseID: id, ActivatedAt: at}
}

// active is a license bought and activated at the same instant.
func active(id, source, credits string, autoRenew bool, at time.Time) []events.Payload {
	return []events.Payload{purchased(id, source, credits, autoRenew, at), activated(id, at)}
}

func allocated(feature, credits string) events.CreditsAllocated {
	return events.CreditsAllocated{Feature: feature, Credits: dec(credits)}
}

// paygReady is an active PAYG contract.
func paygReady(at time.Time) []events.Payload {
	return []events.Payload{
		events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: at},
		events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: at},
	}
}

func switched(feature, from, to string, at time.Time) events.BillingModelSwitched {
	return events.BillingModelSwitched{Feature: feature, From: from, To: to, At: at, NextSwitchAllowedAt: at.Add(ledger.SwitchInterval)}
}

// decideCase is one given/when/then row: a history, a command at an instant, and either the
// events or the rejection it must produce.
type decideCase struct {
	name  string
	given []events.Payload
	when  ledger.Command
	at    time.Time // t0 when zero
	then  []events.Payload
	err   *ledger.Error     // sentinel; set for a rejection
	data  map[string]string // expected Error.Data entries of a rejection
	check func(t *testing.T, after ledger.Account)
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			at := tc.at
			if at.IsZero() {
				at = t0
			}
			a := fold(tc.given...)
			before := fold(tc.given...)

			got, err := rules.Decide(a, tc.when, at)

			assert.Equal(t, before, a, "Decide must not modify the account it is given")
			if tc.err != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.err)
				var de *ledger.Error
				require.ErrorAs(t, err, &de)
				assert.Equal(t, tc.err.Code, de.Code)
				assert.NotEmpty(t, de.Message)
				for k, v := range tc.data {
					assert.Equalf(t, v, de.Data[k], "error data %q", k)
				}
				assert.Empty(t, got, "a rejection produces no events")
				return
			}
			require.NoError(t, err)
			assertPayloads(t, tc.then, got)
			if tc.check != nil {
				tc.check(t, apply(a.Clone(), got...))
			}
		})
	}
}

func TestDecidePurchaseLicense(t *testing.T) {
	t.Parallel()
	plus2 := time.FixedZone("UTC+2", 2*60*60)
	future := time.Date(2025, time.April, 1, 12, 0, 0, 0, plus2)
	runDecide(t, []decideCase{
		{
			name: "sales with default term of 12 months starting now",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1500"), AutoRenew: true},
			then: []events.Payload{events.LicensePurchased{
				LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1500"), TermMonths: 12, AutoRenew: true,
				ContractStart: t0, PurchasedAt: t0, ExpiresAt: t0.AddDate(0, 12, 0),
			}},
			check: func(t *testing.T, a ledger.Account) {
				l := a.Licenses["lic-1"]
				assert.Equal(t, ledger.StatusPending, l.Status)
				assert.Equal(t, []string{"lic-1"}, a.LicenseOrder)
				assertDecimal(t, "0", a.TotalCredits(), "a pending license adds nothing to the pool")
			},
		},
		{
			name: "aws with a future contract start in another zone and a 24 month term",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceAWS, Credits: dec("12.5"), TermMonths: 24, ContractStart: future},
			then: []events.Payload{events.LicensePurchased{
				LicenseID: "lic-1", Source: ledger.SourceAWS, Credits: dec("12.5"), TermMonths: 24,
				ContractStart: future.UTC(), PurchasedAt: t0, ExpiresAt: future.UTC().AddDate(0, 24, 0),
			}},
		},
		{
			name: "term of 1 month",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1"), TermMonths: 1},
			then: []events.Payload{events.LicensePurchased{
				LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1"), TermMonths: 1,
				ContractStart: t0, PurchasedAt: t0, ExpiresAt: t0.AddDate(0, 1, 0),
			}},
		},
		{
			name: "term of 120 months is the maximum",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1"), TermMonths: 120},
			then: []events.Payload{events.LicensePurchased{
				LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1"), TermMonths: 120,
				ContractStart: t0, PurchasedAt: t0, ExpiresAt: t0.AddDate(10, 0, 0),
			}},
		},
		{
			name: "azure minimum of 3 users",
			when: ledger.PurchaseLicense{LicenseID: "az-1", Source: ledger.SourceAzure, Credits: dec("3"), AutoRenew: true},
			then: []events.Payload{purchased("az-1", ledger.SourceAzure, "3", true, t0)},
		},
		{
			name: "azure maximum of 1,000,000 users",
			when: ledger.PurchaseLicense{LicenseID: "az-1", Source: ledger.SourceAzure, Credits: dec("1000000"), AutoRenew: true},
			then: []events.Payload{purchased("az-1", ledger.SourceAzure, "1000000", true, t0)},
		},
		{
			name: "azure whole number written with a fractional zero",
			when: ledger.PurchaseLicense{LicenseID: "az-1", Source: ledger.SourceAzure, Credits: dec("5.0"), AutoRenew: true},
			then: []events.Payload{purchased("az-1", ledger.SourceAzure, "5", true, t0)},
		},
		{
			name: "azure below 3 users",
			when: ledger.PurchaseLicense{LicenseID: "az-1", Source: ledger.SourceAzure, Credits: dec("2")},
			err:  ledger.ErrInvalidArgument,
		},
		{
			name: "azure above 1,000,000 users",
			when: ledger.PurchaseLicense{LicenseID: "az-1", Source: ledger.SourceAzure, Credits: dec("1000001")},
			err:  ledger.ErrInvalidArgument,
		},
		{
			name: "azure fractional users",
			when: ledger.PurchaseLicense{LicenseID: "az-1", Source: ledger.SourceAzure, Credits: dec("3.5")},
			err:  ledger.ErrInvalidArgument,
		},
		{name: "unknown source", when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: "gcp_marketplace", Credits: dec("10")}, err: ledger.ErrInvalidArgument},
		{name: "empty source", when: ledger.PurchaseLicense{LicenseID: "lic-1", Credits: dec("10")}, err: ledger.ErrInvalidArgument},
		{name: "zero credits", when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("0")}, err: ledger.ErrInvalidArgument},
		{name: "negative credits", when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("-5")}, err: ledger.ErrInvalidArgument},
		{name: "license id with a dot", when: ledger.PurchaseLicense{LicenseID: "lic.1", Source: ledger.SourceSales, Credits: dec("10")}, err: ledger.ErrInvalidArgument},
		{name: "license id with a wildcard", when: ledger.PurchaseLicense{LicenseID: "lic*", Source: ledger.SourceSales, Credits: dec("10")}, err: ledger.ErrInvalidArgument},
		{name: "empty license id", when: ledger.PurchaseLicense{Source: ledger.SourceSales, Credits: dec("10")}, err: ledger.ErrInvalidArgument},
		{name: "license id of 65 characters", when: ledger.PurchaseLicense{LicenseID: strings.Repeat("a", 65), Source: ledger.SourceSales, Credits: dec("10")}, err: ledger.ErrInvalidArgument},
		{name: "term of 121 months", when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("10"), TermMonths: 121}, err: ledger.ErrInvalidArgument},
		{name: "negative term", when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("10"), TermMonths: -1}, err: ledger.ErrInvalidArgument},
		{
			name:  "duplicate license id",
			given: hist(purchased("lic-1", ledger.SourceSales, "10", true, t0.AddDate(0, -1, 0))),
			when:  ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("10")},
			err:   ledger.ErrAlreadyExists,
		},
		{
			name: "license id taken by an azure upgrade item",
			given: hist(active("az-1", ledger.SourceAzure, "10", true, t0.AddDate(0, -1, 0)),
				events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u1", ExpiresAt: t0.AddDate(0, 11, 0), UpgradedAt: t0}),
			when: ledger.PurchaseLicense{LicenseID: "az-1-u1", Source: ledger.SourceSales, Credits: dec("10")},
			err:  ledger.ErrAlreadyExists,
		},
		{
			name: "past contract start with auto-renew is renewed in the same result",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), AutoRenew: true, ContractStart: t0.AddDate(0, -13, 0)},
			then: []events.Payload{
				events.LicensePurchased{
					LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), TermMonths: 12, AutoRenew: true,
					ContractStart: t0.AddDate(0, -13, 0), PurchasedAt: t0, ExpiresAt: t0.AddDate(0, -1, 0),
				},
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: t0.AddDate(0, -1, 0), ExpiresAt: t0.AddDate(0, 11, 0)},
			},
			check: func(t *testing.T, a ledger.Account) {
				l := a.Licenses["lic-1"]
				assert.Equal(t, ledger.StatusPending, l.Status)
				assert.True(t, l.ExpiresAt.Equal(t0.AddDate(0, 11, 0)), "expires_at %s", l.ExpiresAt)
				assert.Empty(t, ledger.DueEvents(a, t0), "nothing is left due after the catch-up")
			},
		},
		{
			name: "past contract start three terms back renews term by term past now",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), AutoRenew: true, ContractStart: t0.AddDate(-3, 0, 0)},
			then: []events.Payload{
				events.LicensePurchased{
					LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), TermMonths: 12, AutoRenew: true,
					ContractStart: t0.AddDate(-3, 0, 0), PurchasedAt: t0, ExpiresAt: t0.AddDate(-2, 0, 0),
				},
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: t0.AddDate(-2, 0, 0), ExpiresAt: t0.AddDate(-1, 0, 0)},
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: t0.AddDate(-1, 0, 0), ExpiresAt: t0},
				// A term ending exactly now has lapsed, so it renews once more.
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)},
			},
		},
		{
			name: "past contract start without auto-renew expires in the same result",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceAWS, Credits: dec("100"), ContractStart: t0.AddDate(0, -13, 0)},
			then: []events.Payload{
				events.LicensePurchased{
					LicenseID: "lic-1", Source: ledger.SourceAWS, Credits: dec("100"), TermMonths: 12,
					ContractStart: t0.AddDate(0, -13, 0), PurchasedAt: t0, ExpiresAt: t0.AddDate(0, -1, 0),
				},
				events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: t0.AddDate(0, -1, 0)},
			},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, ledger.StatusExpired, a.Licenses["lic-1"].Status)
				assertDecimal(t, "0", a.TotalCredits(), "pool")
			},
		},
		{
			name: "term ending exactly now without auto-renew expires at once",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), ContractStart: t0.AddDate(0, -12, 0)},
			then: []events.Payload{
				events.LicensePurchased{
					LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), TermMonths: 12,
					ContractStart: t0.AddDate(0, -12, 0), PurchasedAt: t0, ExpiresAt: t0,
				},
				events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: t0},
			},
		},
		{
			name: "term ending 1ns after now is not caught up",
			when: ledger.PurchaseLicense{LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), ContractStart: t0.AddDate(0, -12, 0).Add(time.Nanosecond)},
			then: []events.Payload{events.LicensePurchased{
				LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("100"), TermMonths: 12,
				ContractStart: t0.AddDate(0, -12, 0).Add(time.Nanosecond), PurchasedAt: t0, ExpiresAt: t0.Add(time.Nanosecond),
			}},
		},
	})
}

func TestDecideActivateLicense(t *testing.T) {
	t.Parallel()
	ist := time.FixedZone("UTC+5:30", 5*60*60+30*60)
	runDecide(t, []decideCase{
		{
			name:  "sales license joins the pool",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "lic-1"},
			at:    t0.AddDate(0, 0, 30),
			then:  []events.Payload{activated("lic-1", t0.AddDate(0, 0, 30))},
			check: func(t *testing.T, a ledger.Account) {
				l := a.Licenses["lic-1"]
				assert.Equal(t, ledger.StatusActive, l.Status)
				assert.True(t, l.ActivatedAt.Equal(t0.AddDate(0, 0, 30)))
				assertDecimal(t, "1000", a.TotalCredits(), "pool")
				assertDecimal(t, "1000", a.AvailableCredits(), "available")
			},
		},
		{
			name:  "decision time in another zone is recorded in UTC",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "lic-1"},
			at:    t0.Add(time.Hour).In(ist),
			then:  []events.Payload{activated("lic-1", t0.Add(time.Hour))},
		},
		{
			name:  "activating twice",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "lic-1"},
			at:    t0.Add(time.Minute),
			err:   ledger.ErrAlreadyActivated,
		},
		{
			name: "unknown license",
			when: ledger.ActivateLicense{LicenseID: "lic-404"},
			err:  ledger.ErrNotFound,
		},
		{
			name:  "aws exactly 4 hours after purchase",
			given: hist(purchased("aws-1", ledger.SourceAWS, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "aws-1"},
			at:    t0.Add(4 * time.Hour),
			then:  []events.Payload{activated("aws-1", t0.Add(4*time.Hour))},
		},
		{
			name:  "aws 4 hours and 1ns after purchase",
			given: hist(purchased("aws-1", ledger.SourceAWS, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "aws-1"},
			at:    t0.Add(4*time.Hour + time.Nanosecond),
			err:   ledger.ErrActivationWindow,
		},
		{
			name:  "aws a day after purchase",
			given: hist(purchased("aws-1", ledger.SourceAWS, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "aws-1"},
			at:    t0.AddDate(0, 0, 1),
			err:   ledger.ErrActivationWindow,
		},
		{
			name:  "the 4-hour window applies to aws only",
			given: hist(purchased("az-1", ledger.SourceAzure, "10", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "az-1"},
			at:    t0.Add(5 * time.Hour),
			then:  []events.Payload{activated("az-1", t0.Add(5*time.Hour))},
		},
		{
			name:  "expired license",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", false, t0), events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: t0.AddDate(1, 0, 0)}),
			when:  ledger.ActivateLicense{LicenseID: "lic-1"},
			at:    t0.AddDate(1, 0, 1),
			err:   ledger.ErrLicenseExpired,
		},
		{
			name:  "a term lapsed at decision time without auto-renew is expired first",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", false, t0)),
			when:  ledger.ActivateLicense{LicenseID: "lic-1"},
			at:    t0.AddDate(1, 0, 0),
			err:   ledger.ErrLicenseExpired,
		},
		{
			name:  "a term lapsed at decision time with auto-renew is renewed before activation",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.ActivateLicense{LicenseID: "lic-1"},
			at:    t0.AddDate(1, 0, 0).Add(time.Hour),
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: t0.AddDate(1, 0, 0), ExpiresAt: t0.AddDate(2, 0, 0)},
				activated("lic-1", t0.AddDate(1, 0, 0).Add(time.Hour)),
			},
		},
	})
}

func TestDecideUpgradeContract(t *testing.T) {
	t.Parallel()
	at := t0.AddDate(0, 1, 0)
	exp := t0.AddDate(1, 0, 0)
	azure := hist(active("az-1", ledger.SourceAzure, "100", true, t0))
	item := func(id, credits string) events.ContractUpgraded {
		return events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec(credits), ItemID: id, ExpiresAt: exp, UpgradedAt: t0.AddDate(0, 0, 1)}
	}
	runDecide(t, []decideCase{
		{
			name:  "pending license",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "lic-1", AdditionalCredits: dec("10")},
			at:    at,
			err:   ledger.ErrLicenseNotActive,
		},
		{
			name: "unknown license",
			when: ledger.UpgradeContract{LicenseID: "lic-404", AdditionalCredits: dec("10")},
			err:  ledger.ErrNotFound,
		},
		{
			name:  "expired license",
			given: hist(active("lic-1", ledger.SourceSales, "1000", false, t0), events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: exp}),
			when:  ledger.UpgradeContract{LicenseID: "lic-1", AdditionalCredits: dec("10")},
			at:    exp.Add(time.Hour),
			err:   ledger.ErrLicenseExpired,
		},
		{
			name:  "sales upgrade adds credits to the license itself",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "lic-1", AdditionalCredits: dec("500")},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "lic-1", AdditionalCredits: dec("500"), ExpiresAt: exp, UpgradedAt: at}},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, []string{"lic-1"}, a.LicenseOrder, "a sales upgrade is no item")
				assertDecimal(t, "1500", a.Licenses["lic-1"].Credits, "license credits")
				assertDecimal(t, "1500", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "aws upgrade may be fractional",
			given: hist(active("aws-1", ledger.SourceAWS, "10", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "aws-1", AdditionalCredits: dec("0.5")},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "aws-1", AdditionalCredits: dec("0.5"), ItemID: "aws-1-u1", ExpiresAt: exp, UpgradedAt: at}},
		},
		{
			name:  "item id on a sales license",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "lic-1", AdditionalCredits: dec("5"), ItemID: "x-1"},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "zero additional credits",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "lic-1", AdditionalCredits: dec("0")},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "negative additional credits",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "lic-1", AdditionalCredits: dec("-1")},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "azure upgrade is a new item with the parent's expiry and a default id",
			given: azure,
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("50")},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("50"), ItemID: "az-1-u1", ExpiresAt: exp, UpgradedAt: at}},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, []string{"az-1", "az-1-u1"}, a.LicenseOrder)
				it := a.Licenses["az-1-u1"]
				assert.Equal(t, "az-1", it.ParentID)
				assert.Equal(t, ledger.SourceAzure, it.Source)
				assert.Equal(t, ledger.StatusActive, it.Status)
				assert.True(t, it.ExpiresAt.Equal(a.Licenses["az-1"].ExpiresAt), "item expires with its parent")
				assertDecimal(t, "50", it.Credits, "item credits")
				assertDecimal(t, "100", a.Licenses["az-1"].Credits, "parent credits are unchanged")
				assertDecimal(t, "150", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "second azure upgrade gets the next default id",
			given: hist(azure, item("az-1-u1", "50")),
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("7")},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("7"), ItemID: "az-1-u2", ExpiresAt: exp, UpgradedAt: at}},
		},
		{
			name:  "default item id skips an id another license holds",
			given: hist(azure, purchased("az-1-u1", ledger.SourceSales, "1", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("7")},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("7"), ItemID: "az-1-u2", ExpiresAt: exp, UpgradedAt: at}},
		},
		{
			name:  "azure upgrade with a chosen item id",
			given: azure,
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("20"), ItemID: "az-extra"},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("20"), ItemID: "az-extra", ExpiresAt: exp, UpgradedAt: at}},
		},
		{
			name:  "azure item id held by another license",
			given: hist(azure, purchased("lic-9", ledger.SourceSales, "1", true, t0)),
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("20"), ItemID: "lic-9"},
			at:    at,
			err:   ledger.ErrAlreadyExists,
		},
		{
			name:  "azure item id held by an existing item",
			given: hist(azure, item("az-1-u1", "50")),
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("20"), ItemID: "az-1-u1"},
			at:    at,
			err:   ledger.ErrAlreadyExists,
		},
		{
			name:  "azure item id with bad characters",
			given: azure,
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("20"), ItemID: "az 1>"},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "azure non-integer upgrade",
			given: azure,
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("2.5")},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "azure family reaching exactly 1,000,000 users",
			given: hist(active("az-1", ledger.SourceAzure, "999990", true, t0), item("az-1-u1", "5")),
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("5")},
			at:    at,
			then:  []events.Payload{events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u2", ExpiresAt: exp, UpgradedAt: at}},
		},
		{
			name:  "azure family beyond 1,000,000 users",
			given: hist(active("az-1", ledger.SourceAzure, "999990", true, t0), item("az-1-u1", "5")),
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("6")},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "upgrading an upgrade item",
			given: hist(azure, item("az-1-u1", "50")),
			when:  ledger.UpgradeContract{LicenseID: "az-1-u1", AdditionalCredits: dec("5")},
			at:    at,
			err:   ledger.ErrInvalidArgument,
		},
		{
			name:  "azure upgrade after a due renewal takes the renewed expiry",
			given: azure,
			when:  ledger.UpgradeContract{LicenseID: "az-1", AdditionalCredits: dec("5")},
			at:    exp.AddDate(0, 0, 1),
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "az-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
				events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u1", ExpiresAt: exp.AddDate(1, 0, 0), UpgradedAt: exp.AddDate(0, 0, 1)},
			},
		},
	})
}

func TestDecideAllocateCredits(t *testing.T) {
	t.Parallel()
	pool := hist(active("lic-1", ledger.SourceSales, "1000", true, t0))
	at := t0.AddDate(0, 0, 1)
	runDecide(t, []decideCase{
		{
			name:  "within the pool",
			given: pool,
			when:  ledger.AllocateCredits{Feature: "container_security", Credits: dec("400")},
			at:    at,
			then:  []events.Payload{allocated("container_security", "400")},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "400", a.AllocatedCredits(), "allocated")
				assertDecimal(t, "600", a.AvailableCredits(), "available")
				assertDecimal(t, "400", a.Allocations["container_security"], "feature allocation")
			},
		},
		{
			name:  "adds to what the feature already holds",
			given: hist(pool, allocated("container_security", "100")),
			when:  ledger.AllocateCredits{Feature: "container_security", Credits: dec("0.0001")},
			at:    at,
			then:  []events.Payload{allocated("container_security", "0.0001")},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "100.0001", a.Allocations["container_security"], "feature allocation")
			},
		},
		{
			name:  "exactly what is available",
			given: hist(pool, allocated("email_security", "250")),
			when:  ledger.AllocateCredits{Feature: "endpoint_security_core", Credits: dec("750")},
			at:    at,
			then:  []events.Payload{allocated("endpoint_security_core", "750")},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "0", a.AvailableCredits(), "available")
				assertDecimal(t, "0", a.Shortfall(), "shortfall")
			},
		},
		{
			name:  "more than is available",
			given: hist(pool, allocated("email_security", "700")),
			when:  ledger.AllocateCredits{Feature: "file_security", Credits: dec("300.5")},
			at:    at,
			err:   ledger.ErrInsufficientCredits,
			data:  map[string]string{"available": "300", "requested": "300.5"},
		},
		{
			name:  "a pending license is not in the pool",
			given: hist(purchased("lic-1", ledger.SourceSales, "1000", true, t0)),
			when:  ledger.AllocateCredits{Feature: "file_security", Credits: dec("1")},
			at:    at,
			err:   ledger.ErrInsufficientCredits,
			data:  map[string]string{"available": "0", "requested": "1"},
		},
		{
			name:  "an expired license is not in the pool",
			given: hist(active("lic-1", ledger.SourceSales, "1000", false, t0), events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: t0.AddDate(1, 0, 0)}),
			when:  ledger.AllocateCredits{Feature: "file_security", Credits: dec("1")},
			at:    t0.AddDate(1, 0, 1),
			err:   ledger.ErrInsufficientCredits,
			data:  map[string]string{"available": "0", "requested": "1"},
		},
		{
			name:  "credits that lapsed at decision time are not used",
			given: hist(active("lic-1", ledger.SourceSales, "1000", false, t0)),
			when:  ledger.AllocateCredits{Feature: "file_security", Credits: dec("1")},
			at:    t0.AddDate(1, 0, 0),
			err:   ledger.ErrInsufficientCredits,
			data:  map[string]string{"available": "0"},
		},
		{
			name:  "a due renewal comes first in the result",
			given: pool,
			when:  ledger.AllocateCredits{Feature: "file_security", Credits: dec("10")},
			at:    t0.AddDate(1, 0, 0),
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: t0.AddDate(1, 0, 0), ExpiresAt: t0.AddDate(2, 0, 0)},
				allocated("file_security", "10"),
			},
		},
		{
			name:  "the pool spans every active license of every source",
			given: hist(pool, active("aws-1", ledger.SourceAWS, "0.5", true, t0), active("az-1", ledger.SourceAzure, "3", true, t0)),
			when:  ledger.AllocateCredits{Feature: "container_security", Credits: dec("1003.5")},
			at:    at,
			then:  []events.Payload{allocated("container_security", "1003.5")},
		},
		{name: "unknown feature", given: pool, at: at, when: ledger.AllocateCredits{Feature: "quantum_firewall", Credits: dec("1")}, err: ledger.ErrUnknownFeature},
		{name: "zero credits", given: pool, at: at, when: ledger.AllocateCredits{Feature: "file_security", Credits: dec("0")}, err: ledger.ErrInvalidArgument},
		{name: "negative credits", given: pool, at: at, when: ledger.AllocateCredits{Feature: "file_security", Credits: dec("-3")}, err: ledger.ErrInvalidArgument},
		{
			name:  "feature on payg",
			given: hist(pool, paygReady(t0), switched("container_security", ledger.ModelCredits, ledger.ModelPayg, t0)),
			when:  ledger.AllocateCredits{Feature: "container_security", Credits: dec("1")},
			at:    at,
			err:   ledger.ErrFeatureOnPayg,
		},
	})
}

func TestDecideReleaseCredits(t *testing.T) {
	t.Parallel()
	held := hist(active("lic-1", ledger.SourceSales, "1000", true, t0), allocated("file_security", "100"))
	at := t0.AddDate(0, 0, 1)
	runDecide(t, []decideCase{
		{
			name:  "part of an allocation",
			given: held,
			when:  ledger.ReleaseCredits{Feature: "file_security", Credits: dec("40")},
			at:    at,
			then:  []events.Payload{events.CreditsReleased{Feature: "file_security", Credits: dec("40"), Reason: events.ReleaseRequested}},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "60", a.Allocations["file_security"], "feature allocation")
				assertDecimal(t, "940", a.AvailableCredits(), "available")
			},
		},
		{
			name:  "the whole allocation",
			given: held,
			when:  ledger.ReleaseCredits{Feature: "file_security", Credits: dec("100.000")},
			at:    at,
			then:  []events.Payload{events.CreditsReleased{Feature: "file_security", Credits: dec("100"), Reason: events.ReleaseRequested}},
			check: func(t *testing.T, a ledger.Account) {
				assert.NotContains(t, a.Allocations, "file_security", "an emptied allocation is removed")
				assertDecimal(t, "1000", a.AvailableCredits(), "available")
			},
		},
		{
			name:  "more than the feature holds",
			given: held,
			when:  ledger.ReleaseCredits{Feature: "file_security", Credits: dec("100.0001")},
			at:    at,
			err:   ledger.ErrInsufficientAlloc,
			data:  map[string]string{"allocated": "100", "requested": "100.0001"},
		},
		{
			name:  "a feature that holds nothing",
			given: held,
			when:  ledger.ReleaseCredits{Feature: "container_security", Credits: dec("1")},
			at:    at,
			err:   ledger.ErrInsufficientAlloc,
			data:  map[string]string{"allocated": "0", "requested": "1"},
		},
		{name: "unknown feature", given: held, at: at, when: ledger.ReleaseCredits{Feature: "quantum_firewall", Credits: dec("1")}, err: ledger.ErrUnknownFeature},
		{name: "zero credits", given: held, at: at, when: ledger.ReleaseCredits{Feature: "file_security", Credits: dec("0")}, err: ledger.ErrInvalidArgument},
		{name: "negative credits", given: held, at: at, when: ledger.ReleaseCredits{Feature: "file_security", Credits: dec("-1")}, err: ledger.ErrInvalidArgument},
	})
}

func TestDecideSetAutoRenew(t *testing.T) {
	t.Parallel()
	at := t0.AddDate(0, 0, 1)
	azureFamily := hist(active("az-1", ledger.SourceAzure, "10", true, t0),
		events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u1", ExpiresAt: t0.AddDate(1, 0, 0), UpgradedAt: t0})
	runDecide(t, []decideCase{
		{
			name:  "turn off",
			given: hist(active("lic-1", ledger.SourceSales, "10", true, t0)),
			when:  ledger.SetAutoRenew{LicenseID: "lic-1", Enabled: false},
			at:    at,
			then:  []events.Payload{events.AutoRenewSet{LicenseID: "lic-1", Enabled: false}},
			check: func(t *testing.T, a ledger.Account) { assert.False(t, a.Licenses["lic-1"].AutoRenew) },
		},
		{
			name:  "turn on again",
			given: hist(active("lic-1", ledger.SourceSales, "10", true, t0), events.AutoRenewSet{LicenseID: "lic-1"}),
			when:  ledger.SetAutoRenew{LicenseID: "lic-1", Enabled: true},
			at:    at,
			then:  []events.Payload{events.AutoRenewSet{LicenseID: "lic-1", Enabled: true}},
			check: func(t *testing.T, a ledger.Account) { assert.True(t, a.Licenses["lic-1"].AutoRenew) },
		},
		{
			name:  "on a pending license",
			given: hist(purchased("lic-1", ledger.SourceSales, "10", true, t0)),
			when:  ledger.SetAutoRenew{LicenseID: "lic-1", Enabled: false},
			at:    at,
			then:  []events.Payload{events.AutoRenewSet{LicenseID: "lic-1", Enabled: false}},
		},
		{
			name:  "azure items follow their parent",
			given: azureFamily,
			when:  ledger.SetAutoRenew{LicenseID: "az-1", Enabled: false},
			at:    at,
			then:  []events.Payload{events.AutoRenewSet{LicenseID: "az-1", Enabled: false}},
			check: func(t *testing.T, a ledger.Account) {
				assert.False(t, a.Licenses["az-1"].AutoRenew)
				assert.False(t, a.Licenses["az-1-u1"].AutoRenew)
			},
		},
		{name: "unknown license", at: at, when: ledger.SetAutoRenew{LicenseID: "lic-404"}, err: ledger.ErrNotFound},
		{name: "an upgrade item", given: azureFamily, at: at, when: ledger.SetAutoRenew{LicenseID: "az-1-u1"}, err: ledger.ErrInvalidArgument},
		{
			name:  "expired license",
			given: hist(active("lic-1", ledger.SourceSales, "10", false, t0), events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: t0.AddDate(1, 0, 0)}),
			when:  ledger.SetAutoRenew{LicenseID: "lic-1", Enabled: true},
			at:    t0.AddDate(1, 0, 1),
			err:   ledger.ErrLicenseExpired,
		},
	})
}

func TestDecidePaygContract(t *testing.T) {
	t.Parallel()
	at := t0.AddDate(0, 0, 1)
	bought := hist(events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0})
	runDecide(t, []decideCase{
		{
			name: "purchase without rates",
			when: ledger.PurchasePaygContract{ContractID: "payg-1"},
			at:   at,
			then: []events.Payload{events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: at}},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, []string{"payg-1"}, a.ContractOrder)
				assert.False(t, a.HasActivePayg(), "a purchased contract is not active")
			},
		},
		{
			name: "purchase with an empty rate table",
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{}},
			at:   at,
			then: []events.Payload{events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: at}},
		},
		{
			name: "purchase with rates",
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{
				"container_security": dec("0.012"), "advanced_server_workload_protection": dec("1.5"),
			}},
			at: at,
			then: []events.Payload{events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: at, Rates: map[string]decimal.Decimal{
				"container_security": dec("0.012"), "advanced_server_workload_protection": dec("1.5"),
			}}},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "0.012", a.Contracts["payg-1"].Rates["container_security"], "rate")
			},
		},
		{name: "duplicate contract", given: bought, at: at, when: ledger.PurchasePaygContract{ContractID: "payg-1"}, err: ledger.ErrAlreadyExists},
		// The data-center rate is the highest (DOMAIN), whichever of the contract or the card sets
		// each tier: otherwise a computer outside a cloud connector would pay less than a sized one.
		{name: "a size tier above the card's data-center rate", at: at, err: ledger.ErrInvalidArgument,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{
				"advanced_server_workload_protection:xlarge": dec("0.10")}}},
		{name: "a data-center rate below the card's xlarge rate", at: at, err: ledger.ErrInvalidArgument,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{
				"advanced_server_workload_protection:data_center": dec("0.01")}}},
		{name: "a size tier above the contract's single rate", at: at, err: ledger.ErrInvalidArgument,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{
				"advanced_server_workload_protection": dec("0.5"), "advanced_server_workload_protection:xlarge": dec("0.7")}}},
		{name: "a size tier and a data-center rate at least as high", at: at,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{
				"advanced_server_workload_protection:xlarge": dec("0.10"), "advanced_server_workload_protection:data_center": dec("0.10")}},
			then: []events.Payload{events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: at, Rates: map[string]decimal.Decimal{
				"advanced_server_workload_protection:xlarge": dec("0.10"), "advanced_server_workload_protection:data_center": dec("0.10")}}}},
		{name: "contract id with a dot", at: at, when: ledger.PurchasePaygContract{ContractID: "payg.1"}, err: ledger.ErrInvalidArgument},
		{
			name: "rate for a feature that cannot be billed payg",
			at:   at,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{"email_security": dec("1")}},
			err:  ledger.ErrNotPaygEligible,
		},
		{
			name: "rate for an unknown feature",
			at:   at,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{"quantum_firewall": dec("1")}},
			err:  ledger.ErrUnknownFeature,
		},
		{
			name: "zero rate",
			at:   at,
			when: ledger.PurchasePaygContract{ContractID: "payg-1", Rates: map[string]decimal.Decimal{"file_security": dec("0")}},
			err:  ledger.ErrInvalidArgument,
		},
		{
			name:  "activate",
			given: bought,
			when:  ledger.ActivatePaygContract{ContractID: "payg-1"},
			at:    at,
			then:  []events.Payload{events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: at}},
			check: func(t *testing.T, a ledger.Account) {
				assert.True(t, a.HasActivePayg())
				assert.True(t, a.Contracts["payg-1"].ActivatedAt.Equal(at))
			},
		},
		{name: "activate an unknown contract", at: at, when: ledger.ActivatePaygContract{ContractID: "payg-404"}, err: ledger.ErrNotFound},
		{name: "activate twice", given: paygReady(t0), at: at, when: ledger.ActivatePaygContract{ContractID: "payg-1"}, err: ledger.ErrAlreadyActivated},
	})
}

func TestDecideSwitchBillingModel(t *testing.T) {
	t.Parallel()
	at := t0.AddDate(0, 0, 1)
	base := hist(active("lic-1", ledger.SourceSales, "1000", true, t0), paygReady(t0))
	onPayg := hist(base, switched("container_security", ledger.ModelCredits, ledger.ModelPayg, at))
	cases := []decideCase{
		{name: "unknown feature", given: base, at: at, when: ledger.SwitchBillingModel{Feature: "quantum_firewall", To: ledger.ModelPayg}, err: ledger.ErrUnknownFeature},
		{name: "endpoint_security_core is not payg eligible", given: base, at: at, when: ledger.SwitchBillingModel{Feature: "endpoint_security_core", To: ledger.ModelPayg}, err: ledger.ErrNotPaygEligible},
		{name: "email_security is not payg eligible", given: base, at: at, when: ledger.SwitchBillingModel{Feature: "email_security", To: ledger.ModelPayg}, err: ledger.ErrNotPaygEligible},
		{name: "unknown target model", given: base, at: at, when: ledger.SwitchBillingModel{Feature: "file_security", To: "free"}, err: ledger.ErrInvalidArgument},
		{
			name:  "no payg contract",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0)),
			at:    at,
			when:  ledger.SwitchBillingModel{Feature: "file_security", To: ledger.ModelPayg},
			err:   ledger.ErrNoActivePayg,
		},
		{
			name:  "payg contract purchased but not activated",
			given: hist(active("lic-1", ledger.SourceSales, "1000", true, t0), events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0}),
			at:    at,
			when:  ledger.SwitchBillingModel{Feature: "file_security", To: ledger.ModelPayg},
			err:   ledger.ErrNoActivePayg,
		},
		{name: "already on credits", given: base, at: at, when: ledger.SwitchBillingModel{Feature: "file_security", To: ledger.ModelCredits}, err: ledger.ErrAlreadyOnModel},
		{name: "already on payg", given: onPayg, at: at.AddDate(0, 2, 0), when: ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelPayg}, err: ledger.ErrAlreadyOnModel},
		{
			name:  "to payg with nothing allocated",
			given: base,
			when:  ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelPayg},
			at:    at,
			then:  []events.Payload{switched("container_security", ledger.ModelCredits, ledger.ModelPayg, at)},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, ledger.ModelPayg, a.BillingModel("container_security"))
				fb := a.Features["container_security"]
				assert.True(t, fb.NextSwitchAllowedAt.Equal(at.Add(30*24*time.Hour)))
				assert.Equal(t, []ledger.Switch{{From: ledger.ModelCredits, To: ledger.ModelPayg, At: at}}, fb.History)
			},
		},
		{
			name:  "to payg releases the feature's allocation in the same result",
			given: hist(base, allocated("container_security", "250"), allocated("file_security", "10")),
			when:  ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelPayg},
			at:    at,
			then: []events.Payload{
				events.CreditsReleased{Feature: "container_security", Credits: dec("250"), Reason: events.ReleaseSwitchedToPayg},
				switched("container_security", ledger.ModelCredits, ledger.ModelPayg, at),
			},
			check: func(t *testing.T, a ledger.Account) {
				assert.NotContains(t, a.Allocations, "container_security")
				assertDecimal(t, "10", a.AllocatedCredits(), "allocated")
				assertDecimal(t, "990", a.AvailableCredits(), "available")
			},
		},
		{
			name:  "back to credits exactly 30 days later",
			given: onPayg,
			when:  ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelCredits},
			at:    at.Add(30 * 24 * time.Hour),
			then:  []events.Payload{switched("container_security", ledger.ModelPayg, ledger.ModelCredits, at.Add(30*24*time.Hour))},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, ledger.ModelCredits, a.BillingModel("container_security"))
				assert.Len(t, a.Features["container_security"].History, 2)
			},
		},
		{
			name:  "back to credits 1ns before 30 days",
			given: onPayg,
			when:  ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelCredits},
			at:    at.Add(30*24*time.Hour - time.Nanosecond),
			err:   ledger.ErrSwitchTooSoon,
			data:  map[string]string{"next_switch_allowed_at": at.Add(30 * 24 * time.Hour).Format(time.RFC3339)},
		},
		{
			name:  "back to payg 1ns before 30 days",
			given: hist(onPayg, switched("container_security", ledger.ModelPayg, ledger.ModelCredits, at.Add(30*24*time.Hour))),
			when:  ledger.SwitchBillingModel{Feature: "container_security", To: ledger.ModelPayg},
			at:    at.Add(60*24*time.Hour - time.Nanosecond),
			err:   ledger.ErrSwitchTooSoon,
		},
		{
			name:  "one feature's switch does not hold back another",
			given: onPayg,
			when:  ledger.SwitchBillingModel{Feature: "file_security", To: ledger.ModelPayg},
			at:    at.Add(time.Minute),
			then:  []events.Payload{switched("file_security", ledger.ModelCredits, ledger.ModelPayg, at.Add(time.Minute))},
		},
	}
	for _, f := range []string{"cloud_account_assessment", "container_security", "file_security", "advanced_server_workload_protection"} {
		cases = append(cases, decideCase{
			name:  f + " is payg eligible",
			given: base,
			when:  ledger.SwitchBillingModel{Feature: f, To: ledger.ModelPayg},
			at:    at,
			then:  []events.Payload{switched(f, ledger.ModelCredits, ledger.ModelPayg, at)},
		})
	}
	runDecide(t, cases)
}

func TestDecideAdvanceTime(t *testing.T) {
	t.Parallel()
	exp := t0.AddDate(1, 0, 0)
	shortTerm := events.LicensePurchased{
		LicenseID: "lic-2", Source: ledger.SourceSales, Credits: dec("100"), TermMonths: 3,
		ContractStart: t0, PurchasedAt: t0, ExpiresAt: t0.AddDate(0, 3, 0),
	}
	azureFamily := hist(active("az-1", ledger.SourceAzure, "10", true, t0),
		events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u1", ExpiresAt: exp, UpgradedAt: t0.AddDate(0, 1, 0)})
	runDecide(t, []decideCase{
		{name: "nothing due on an empty account", when: ledger.AdvanceTime{}, then: nil},
		{
			name:  "nothing due 1ns before expiry",
			given: hist(active("lic-1", ledger.SourceSales, "100", false, t0)),
			when:  ledger.AdvanceTime{},
			at:    exp.Add(-time.Nanosecond),
			then:  nil,
		},
		{
			name:  "auto-renew on renews for the next 12 months",
			given: hist(active("lic-1", ledger.SourceSales, "100", true, t0)),
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(0, 12, 0)}},
			check: func(t *testing.T, a ledger.Account) {
				l := a.Licenses["lic-1"]
				assert.Equal(t, ledger.StatusActive, l.Status)
				assert.True(t, l.ExpiresAt.Equal(exp.AddDate(0, 12, 0)))
				assertDecimal(t, "100", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "a renewed term is 12 months whatever the first term was",
			given: hist(shortTerm, activated("lic-2", t0), events.AutoRenewSet{LicenseID: "lic-2", Enabled: true}),
			when:  ledger.AdvanceTime{},
			at:    t0.AddDate(0, 3, 0),
			then:  []events.Payload{events.LicenseRenewed{LicenseID: "lic-2", PreviousExpiresAt: t0.AddDate(0, 3, 0), ExpiresAt: t0.AddDate(0, 15, 0)}},
		},
		{
			name:  "auto-renew off expires at the end of the term",
			given: hist(active("lic-1", ledger.SourceSales, "100", false, t0)),
			when:  ledger.AdvanceTime{},
			at:    exp.Add(3 * time.Second),
			then:  []events.Payload{events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: exp}},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, ledger.StatusExpired, a.Licenses["lic-1"].Status)
				assertDecimal(t, "0", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "auto-renew turned off after purchase",
			given: hist(active("lic-1", ledger.SourceSales, "100", true, t0), events.AutoRenewSet{LicenseID: "lic-1"}),
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: exp}},
		},
		{
			name:  "an expired license stays expired",
			given: hist(active("lic-1", ledger.SourceSales, "100", false, t0), events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: exp}),
			when:  ledger.AdvanceTime{},
			at:    exp.AddDate(5, 0, 0),
			then:  nil,
		},
		{
			name:  "long overdue renewals catch up term by term",
			given: hist(active("lic-1", ledger.SourceSales, "100", true, t0)),
			when:  ledger.AdvanceTime{},
			at:    exp.AddDate(2, 0, 1),
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: exp.AddDate(1, 0, 0), ExpiresAt: exp.AddDate(2, 0, 0)},
				events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: exp.AddDate(2, 0, 0), ExpiresAt: exp.AddDate(3, 0, 0)},
			},
		},
		{
			name:  "a pending license lapses too",
			given: hist(purchased("lic-1", ledger.SourceSales, "100", false, t0)),
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: exp}},
		},
		{
			name: "several licenses in license order",
			given: hist(active("lic-b", ledger.SourceSales, "100", true, t0), active("lic-a", ledger.SourceAWS, "50", false, t0),
				active("lic-c", ledger.SourceSales, "100", true, t0.AddDate(0, 6, 0))),
			when: ledger.AdvanceTime{},
			at:   exp,
			then: []events.Payload{
				events.LicenseRenewed{LicenseID: "lic-b", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
				events.LicenseExpired{LicenseID: "lic-a", ExpiredAt: exp},
			},
		},
		{
			name:  "azure items renew with their parent",
			given: azureFamily,
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseRenewed{LicenseID: "az-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)}},
			check: func(t *testing.T, a ledger.Account) {
				assert.True(t, a.Licenses["az-1-u1"].ExpiresAt.Equal(exp.AddDate(1, 0, 0)), "item expiry follows the parent")
				assert.Equal(t, ledger.StatusActive, a.Licenses["az-1-u1"].Status)
				assertDecimal(t, "15", a.TotalCredits(), "pool")
			},
		},
		{
			name:  "azure items expire with their parent",
			given: hist(azureFamily, events.AutoRenewSet{LicenseID: "az-1"}),
			when:  ledger.AdvanceTime{},
			at:    exp,
			then:  []events.Payload{events.LicenseExpired{LicenseID: "az-1", ExpiredAt: exp}},
			check: func(t *testing.T, a ledger.Account) {
				assert.Equal(t, ledger.StatusExpired, a.Licenses["az-1"].Status)
				assert.Equal(t, ledger.StatusExpired, a.Licenses["az-1-u1"].Status)
				assertDecimal(t, "0", a.TotalCredits(), "pool")
			},
		},
		{
			name: "an expiry under existing allocations leaves a shortfall and keeps the allocations",
			given: hist(active("lic-1", ledger.SourceSales, "100", true, t0), shortTerm, activated("lic-2", t0),
				allocated("container_security", "120"), allocated("file_security", "30")),
			when: ledger.AdvanceTime{},
			at:   t0.AddDate(0, 3, 0),
			then: []events.Payload{events.LicenseExpired{LicenseID: "lic-2", ExpiredAt: t0.AddDate(0, 3, 0)}},
			check: func(t *testing.T, a ledger.Account) {
				assertDecimal(t, "100", a.TotalCredits(), "pool")
				assertDecimal(t, "150", a.AllocatedCredits(), "allocated")
				assertDecimal(t, "0", a.AvailableCredits(), "available")
				assertDecimal(t, "50", a.Shortfall(), "shortfall")
				assertDecimal(t, "120", a.Allocations["container_security"], "allocations are not silently released")
			},
		},
	})
}

// TestShortfallLifecycle walks an account through an expiry that leaves features holding more than
// the pool, and back out of it by releasing credits.
func TestShortfallLifecycle(t *testing.T) {
	t.Parallel()
	lapse := t0.AddDate(0, 6, 0)
	a := fold(hist(
		active("lic-1", ledger.SourceSales, "100", true, t0),
		events.LicensePurchased{LicenseID: "lic-2", Source: ledger.SourceAWS, Credits: dec("100"), TermMonths: 6, ContractStart: t0, PurchasedAt: t0, ExpiresAt: lapse},
		activated("lic-2", t0),
		allocated("container_security", "150"),
	)...)
	require.Len(t, ledger.DueEvents(a, lapse.Add(-time.Nanosecond)), 0)
	due := ledger.DueEvents(a, lapse)
	assertPayloads(t, []events.Payload{events.LicenseExpired{LicenseID: "lic-2", ExpiredAt: lapse}}, due)

	got, err := rules.Decide(a, ledger.AllocateCredits{Feature: "file_security", Credits: dec("1")}, lapse)
	assert.ErrorIs(t, err, ledger.ErrInsufficientCredits)
	assert.Empty(t, got)

	got, err = rules.Decide(a, ledger.AdvanceTime{}, lapse)
	require.NoError(t, err)
	a = apply(a, got...)
	assertDecimal(t, "50", a.Shortfall(), "shortfall after expiry")
	assertDecimal(t, "0", a.AvailableCredits(), "available after expiry")

	got, err = rules.Decide(a, ledger.ReleaseCredits{Feature: "container_security", Credits: dec("60")}, lapse.Add(time.Hour))
	require.NoError(t, err)
	a = apply(a, got...)
	assertDecimal(t, "0", a.Shortfall(), "shortfall after release")
	assertDecimal(t, "10", a.AvailableCredits(), "available after release")
	assertDecimal(t, "90", a.AllocatedCredits(), "allocated after release")
}

// TestDecideDoesNotModifyAccountWhenTimeIsDue guards the documented promise that Decide clones
// before applying due renewals and expiries.
func TestDecideDoesNotModifyAccountWhenTimeIsDue(t *testing.T) {
	t.Parallel()
	a := fold(active("lic-1", ledger.SourceSales, "100", false, t0)...)
	_, err := rules.Decide(a, ledger.AdvanceTime{}, t0.AddDate(2, 0, 0))
	require.NoError(t, err)
	assert.Equal(t, ledger.StatusActive, a.Licenses["lic-1"].Status)
	assert.Equal(t, uint64(2), a.Version)
}

type unknownCommand struct{}

func (unknownCommand) Name() string { return "unknown" }

func TestDecideUnknownCommand(t *testing.T) {
	t.Parallel()
	_, err := rules.Decide(ledger.NewAccount(acct), unknownCommand{}, t0)
	assert.ErrorIs(t, err, ledger.ErrInvalidArgument)
}

func TestErrorIdentity(t *testing.T) {
	t.Parallel()
	err := error(ledger.Reject(ledger.CodeInsufficientCredits, "requested %d", 5))
	assert.ErrorIs(t, err, ledger.ErrInsufficientCredits)
	assert.NotErrorIs(t, err, ledger.ErrInsufficientAlloc)
	wrapped := errors.Join(errors.New("context"), err)
	var de *ledger.Error
	require.ErrorAs(t, wrapped, &de)
	assert.Equal(t, ledger.CodeInsufficientCredits, de.Code)
	assert.Equal(t, "insufficient_credits: requested 5", de.Error())
}

// TestDecidePurchaseRejectsUnencodableExpiry: a contract start that RFC 3339 can express but whose
// expiry cannot be stored must be rejected, not accepted and then fail in the event store.
func TestDecidePurchaseRejectsUnencodableExpiry(t *testing.T) {
	t.Parallel()
	got, err := rules.Decide(ledger.NewAccount(acct), ledger.PurchaseLicense{
		LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1"), ContractStart: time.Date(9999, time.June, 1, 0, 0, 0, 0, time.UTC),
	}, t0)
	if err == nil {
		for _, p := range got {
			_, encErr := events.EncodePayload(p)
			assert.NoError(t, encErr, "Decide returned an event that cannot be stored")
		}
		return
	}
	assert.ErrorIs(t, err, ledger.ErrInvalidArgument)
}

// TestDecidePurchaseFarPastStartIsCaughtUpOrRejected: the contract says a license bought with a
// past contract_start is brought up to date at once.
func TestDecidePurchaseFarPastStartIsCaughtUpOrRejected(t *testing.T) {
	t.Parallel()
	got, err := rules.Decide(ledger.NewAccount(acct), ledger.PurchaseLicense{
		LicenseID: "lic-1", Source: ledger.SourceSales, Credits: dec("1"), AutoRenew: true, ContractStart: time.Date(1, time.January, 1, 0, 0, 1, 0, time.UTC),
	}, t0)
	if err != nil {
		assert.ErrorIs(t, err, ledger.ErrInvalidArgument)
		return
	}
	due := ledger.DueEvents(apply(ledger.NewAccount(acct), got...), t0)
	assert.Zerof(t, len(due), "%d renewals still due right after the purchase (%d events emitted)", len(due), len(got))
}

// DOMAIN: auto-renew is on by default and the buyer can turn it off and on again at any time;
// the setting in force at expiry decides between renewal and expiry.
func TestAutoRenewOffThenOnAgainRenews(t *testing.T) {
	t.Parallel()
	a := ledger.NewAccount(acct)
	step := func(at time.Time, cmd ledger.Command) {
		t.Helper()
		out, err := rules.Decide(a, cmd, at)
		require.NoError(t, err)
		a = apply(a, out...)
	}
	step(t0, ledger.PurchaseLicense{LicenseID: "L", Source: ledger.SourceSales, Credits: dec("10"), AutoRenew: true})
	step(t0, ledger.ActivateLicense{LicenseID: "L"})
	step(t0.Add(time.Hour), ledger.SetAutoRenew{LicenseID: "L", Enabled: false})
	step(t0.Add(2*time.Hour), ledger.SetAutoRenew{LicenseID: "L", Enabled: true})
	expiry := a.Licenses["L"].ExpiresAt
	due := ledger.DueEvents(a, expiry)
	require.Len(t, due, 1)
	renewed, ok := due[0].(events.LicenseRenewed)
	require.True(t, ok, "got %T", due[0])
	assert.True(t, renewed.ExpiresAt.Equal(expiry.AddDate(0, 12, 0)))
}

// TestTermsEndOnTheLastDayOfShorterMonths: a term that would end on a day the month does not
// have ends on the month's last day (not days into the next month), at purchase and at renewal.
func TestTermsEndOnTheLastDayOfShorterMonths(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	cases := []struct {
		name  string
		start string
		term  int
		want  string
	}{
		{"one month from 31 January", "2026-01-31T10:00:00Z", 1, "2026-02-28T10:00:00Z"},
		{"one month from 31 January in a leap year", "2028-01-31T10:00:00Z", 1, "2028-02-29T10:00:00Z"},
		{"a year from 29 February", "2028-02-29T00:00:00Z", 12, "2029-02-28T00:00:00Z"},
		{"three months from 31 March", "2026-03-31T23:59:59Z", 3, "2026-06-30T23:59:59Z"},
		{"a day every month has", "2026-01-15T08:00:00Z", 12, "2027-01-15T08:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := rules.Decide(ledger.NewAccount(acct), ledger.PurchaseLicense{LicenseID: "L", Source: ledger.SourceSales,
				Credits: dec("10"), TermMonths: c.term, ContractStart: at(c.start)}, at(c.start))
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, at(c.want), got[0].(events.LicensePurchased).ExpiresAt)
		})
	}
	// Renewal: a license ending on 31 March 2027 with auto-renew, brought up to date a year on.
	a := fold(events.LicensePurchased{LicenseID: "L", Source: ledger.SourceSales, Credits: dec("10"), TermMonths: 1,
		AutoRenew: true, PurchasedAt: at("2027-02-28T00:00:00Z"), ExpiresAt: at("2027-03-31T00:00:00Z")})
	due := ledger.DueEvents(a, at("2027-03-31T00:00:00Z"))
	require.Len(t, due, 1)
	assert.Equal(t, at("2028-03-31T00:00:00Z"), due[0].(events.LicenseRenewed).ExpiresAt)
	leap := fold(events.LicensePurchased{LicenseID: "L", Source: ledger.SourceSales, Credits: dec("10"), TermMonths: 12,
		AutoRenew: true, PurchasedAt: at("2027-02-28T00:00:00Z"), ExpiresAt: at("2028-02-29T00:00:00Z")})
	due = ledger.DueEvents(leap, at("2028-02-29T00:00:00Z"))
	require.Len(t, due, 1)
	assert.Equal(t, at("2029-02-28T00:00:00Z"), due[0].(events.LicenseRenewed).ExpiresAt, "not 1 March")
}
