package server_test

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMicroStatsCountRejections: through the real writer, $SRV.STATS counts the handler's own
// rejections in num_errors and the writer's in the endpoint's data; INFO has each endpoint's
// metadata and a version.
func TestMicroStatsCountRejections(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "stats")
	a.activeLicense("L-1", "100")
	a.reject("allocate_credits", m{"feature": "file_security", "credits": "500"}, "insufficient_credits")
	a.reject("allocate_credits", m{"feature": "file_security", "credits": "-1"}, "invalid_argument")

	var stats micro.Stats
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.STATS.creditledger", "").Data, &stats))
	var alloc *micro.EndpointStats
	for _, e := range stats.Endpoints {
		if e.Subject == "ledger.cmd.allocate_credits" {
			alloc = e
		}
	}
	require.NotNil(t, alloc)
	assert.Equal(t, 1, alloc.NumErrors, "invalid_argument, answered by the handler")
	var data struct {
		Rejections uint64            `json:"rejections"`
		ByCode     map[string]uint64 `json:"by_code"`
	}
	require.NoError(t, json.Unmarshal(alloc.Data, &data))
	assert.Equal(t, map[string]uint64{"insufficient_credits": 1}, data.ByCode, "answered by the writer")

	var info micro.Info
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.INFO.creditledger", "").Data, &info))
	assert.NotEmpty(t, info.Version)
	for _, e := range info.Endpoints {
		if e.Subject == "ledger.cmd.allocate_credits" {
			assert.Equal(t, "AllocateCredits", e.Metadata["request_schema"])
			assert.NotEmpty(t, e.Metadata["description"])
		}
	}
}
