package commands_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
)

// usageBody is a record_usage request of workload protection with extra members appended.
func usageBody(extra string) string {
	return `{"command_id":"c","account_id":"a","usage_id":"u1","feature":"advanced_server_workload_protection",` +
		`"quantity":"2","unit":"hours","occurred_at":"2026-11-23T05:40:45Z","instance_size":"large","cloud_connector":"aws"` + extra + `}`
}

// record_usage takes vcenter (true or false, default false); anything else is invalid_argument.
func TestParseRecordUsageVCenter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		extra string
		want  *bool // nil: invalid_argument
	}{
		{``, ptr(false)}, {`,"vcenter":false`, ptr(false)}, {`,"vcenter":true`, ptr(true)},
		{`,"vcenter":"true"`, nil}, {`,"vcenter":"yes"`, nil}, {`,"vcenter":1`, nil}, {`,"vcenter":{}`, nil}, {`,"VCenter":true`, nil},
	}
	for _, c := range cases {
		t.Run(c.extra, func(t *testing.T) {
			t.Parallel()
			p, err := commands.Parse("record_usage", []byte(usageBody(c.extra)))
			if c.want == nil {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ledger.ErrInvalidArgument), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, *c.want, p.Command.(ledger.RecordUsage).VCenter)
		})
	}
}

// The idempotency hash covers vcenter: the same command_id with another vcenter flag is another
// body (idempotency_key_reused), while a request that leaves it out hashes as it always did, the
// same as vcenter false.
func TestBodyHashCoversVCenter(t *testing.T) {
	t.Parallel()
	hash := func(body string) string {
		p, err := commands.Parse("record_usage", []byte(body))
		require.NoError(t, err)
		return p.BodyHash
	}
	base := hash(usageBody(``))
	assert.Equal(t, base, hash(usageBody(`,"vcenter":false`)))
	assert.NotEqual(t, base, hash(usageBody(`,"vcenter":true`)))
	// The hash of a request without vcenter is pinned to what the build before the field
	// computed, so a retry of a command accepted by that build is still recognised.
	assert.Equal(t, "d06d23ee0f48c649ca737a377ea7513f", base)
}

func ptr[T any](v T) *T { return &v }
