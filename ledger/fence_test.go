package ledger_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

func validFence() ledger.Fence {
	return ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 42, Owner: "node-b", Partition: 17, Partitions: 64,
		Time: time.Date(2026, 11, 28, 21, 0, 0, 123456789, time.UTC)}
}

// TestFenceStoredForm pins the stored bytes: docs/FORMAT.md shows the same record.
func TestFenceStoredForm(t *testing.T) {
	data, err := ledger.EncodeFence(validFence())
	require.NoError(t, err)
	assert.Equal(t, `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":17,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`, string(data))
	back, err := ledger.DecodeFence(data)
	require.NoError(t, err)
	assert.Equal(t, validFence(), back)
}

func TestDecodeFenceRefuses(t *testing.T) {
	cases := map[string]string{
		"not json":        `nope`,
		"other format":    `{"format":"creditledger-fence/2","lease_revision":42,"owner":"node-b","partition":17,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`,
		"unknown member":  `{"extra":1,"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":17,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`,
		"partition >= n":  `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":64,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`,
		"bad owner":       `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node.b","partition":17,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`,
		"not canonical":   `{"partition":17,"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`,
		"missing time":    `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":17,"partitions":64}`,
		"local time":      `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":17,"partitions":64,"time":"2026-11-28T22:00:00.123456789+01:00"}`,
		"trailing data":   `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":17,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"} {}`,
		"an event's body": `{"account_id":"acme","version":1}`,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ledger.DecodeFence([]byte(data))
			assert.ErrorIs(t, err, ledger.ErrMalformedFence)
		})
	}
}

func FuzzDecodeFence(f *testing.F) {
	good, _ := ledger.EncodeFence(validFence())
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fc, err := ledger.DecodeFence(data)
		if err != nil {
			return
		}
		again, err := ledger.EncodeFence(fc)
		require.NoError(t, err)
		assert.Equal(t, string(data), string(again), "an accepted record has one stored form")
	})
}
