package commands_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
)

func TestParseAmounts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		credits string
		want    string // "" means invalid_argument
	}{
		{`"1500"`, "1500"}, {`"12.5"`, "12.5"}, {`12.5`, "12.5"}, {`"10.0000"`, "10"}, {`1e3`, "1000"},
		{`"1000000000000"`, "1000000000000"}, {`"0.0001"`, "0.0001"},
		{`"1.50000"`, ""}, {`1.50000`, ""}, {`"1e3"`, ""}, {`"0"`, ""}, {`"-1"`, ""}, {`"0.00001"`, ""},
		{`"1000000000000.0001"`, ""}, {`1e13`, ""}, {`"abc"`, ""}, {`null`, ""}, {`true`, ""}, {`"+5"`, ""},
		{`" 5"`, ""}, {`"05"`, ""}, {`".5"`, ""}, {`{}`, ""},
	}
	for _, c := range cases {
		c := c
		t.Run(c.credits, func(t *testing.T) {
			t.Parallel()
			p, err := commands.Parse("allocate_credits", []byte(`{"command_id":"c","account_id":"a","feature":"file_security","credits":`+c.credits+`}`))
			if c.want == "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ledger.ErrInvalidArgument), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, p.Command.(ledger.AllocateCredits).Credits.String())
		})
	}
}

func TestParseIsStrictJSON(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"unknown field":        `{"command_id":"c","account_id":"a","license_id":"L","colour":"red"}`,
		"field in other case":  `{"command_id":"c","account_id":"a","license_id":"L","License_ID":"M"}`,
		"duplicate field":      `{"command_id":"c","account_id":"a","license_id":"L","license_id":"M"}`,
		"trailing data":        `{"command_id":"c","account_id":"a","license_id":"L"} {}`,
		"not an object":        `["c"]`,
		"account id with dot":  `{"command_id":"c","account_id":"a.b","license_id":"L"}`,
		"reserved command id":  `{"command_id":"$time:x","account_id":"a","license_id":"L"}`,
		"license id wildcard":  `{"command_id":"c","account_id":"a","license_id":"L>"}`,
		"command id too long":  `{"command_id":"` + string(make([]byte, 0)) + longID + `","account_id":"a","license_id":"L"}`,
		"invalid utf-8 string": "{\"command_id\":\"c\xff\",\"account_id\":\"a\",\"license_id\":\"L\"}",
	} {
		body := body
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := commands.Parse("activate_license", []byte(body))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ledger.ErrInvalidArgument), "%v", err)
		})
	}
}

var longID = func() string {
	b := make([]byte, 129)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}()

// The idempotency hash compares normalised bodies: amounts by value, defaults filled in.
func TestBodyHashNormalises(t *testing.T) {
	t.Parallel()
	hash := func(body string) string {
		p, err := commands.Parse("purchase_license", []byte(body))
		require.NoError(t, err)
		return p.BodyHash
	}
	base := hash(`{"command_id":"c","account_id":"a","license_id":"L","source":"sales","credits":"10"}`)
	assert.Equal(t, base, hash(`{"command_id":"c","account_id":"a","license_id":"L","source":"sales","credits":10.0}`))
	assert.Equal(t, base, hash(`{"command_id":"c","account_id":"a","license_id":"L","source":"sales","credits":"10","term_months":12,"auto_renew":true}`))
	assert.Equal(t, base, hash(`{"command_id":"c","account_id":"a","license_id":"L","source":"sales","credits":"10","expected_version":3}`))
	assert.NotEqual(t, base, hash(`{"command_id":"c","account_id":"a","license_id":"L","source":"sales","credits":"11"}`))
	assert.NotEqual(t, base, hash(`{"command_id":"c","account_id":"b","license_id":"L","source":"sales","credits":"10"}`))
}

// DOMAIN: a license bought without saying otherwise runs 12 months with auto-renew on.
func TestPurchaseDefaults(t *testing.T) {
	t.Parallel()
	p, err := commands.Parse("purchase_license", []byte(`{"command_id":"c","account_id":"a","license_id":"L","source":"aws_marketplace","credits":"5"}`))
	require.NoError(t, err)
	cmd := p.Command.(ledger.PurchaseLicense)
	assert.Equal(t, 12, cmd.TermMonths)
	assert.True(t, cmd.AutoRenew)
	assert.True(t, cmd.ContractStart.IsZero(), "contract_start defaults to the decision time, injected by the writer's clock")
}
