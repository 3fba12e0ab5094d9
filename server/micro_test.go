package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMicroStatsCountRejections: through the real writer, after N accepted commands, M writer
// rejections and K invalid requests on one endpoint, $SRV.STATS reports N+M+K requests and M+K
// errors, last_error naming the last code; the endpoint's data still counts the writer's
// rejections by code. A query's not_found is an error of its endpoint too.
func TestMicroStatsCountRejections(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "stats")
	a.activeLicense("L-1", "100")
	const n, rejected, invalid = 3, 2, 2
	for i := 0; i < invalid; i++ {
		a.reject("allocate_credits", m{"feature": "file_security", "credits": "-1"}, "invalid_argument")
	}
	for i := 0; i < n; i++ {
		a.ok("allocate_credits", m{"feature": "file_security", "credits": "10"})
	}
	for i := 0; i < rejected; i++ {
		a.reject("allocate_credits", m{"feature": "file_security", "credits": "500"}, "insufficient_credits")
	}
	r := decodeRejection(t, queryNATS(t, l, "balance", "nobody", 0))
	require.Equal(t, "not_found", r.Code)

	var stats micro.Stats
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.STATS.creditledger", "").Data, &stats))
	assert.Equal(t, micro.StatsResponseType, stats.Type)
	bySubject := map[string]*micro.EndpointStats{}
	for _, e := range stats.Endpoints {
		bySubject[e.Subject] = e
	}
	alloc, balance := bySubject["ledger.cmd.allocate_credits"], bySubject["ledger.query.balance"]
	require.NotNil(t, alloc)
	require.NotNil(t, balance)
	assert.Equal(t, n+rejected+invalid, alloc.NumRequests)
	assert.Equal(t, rejected+invalid, alloc.NumErrors, "invalid_argument (the handler's) and insufficient_credits (the writer's)")
	assert.True(t, strings.HasPrefix(alloc.LastError, "insufficient_credits:"), alloc.LastError)
	var data struct {
		Rejections uint64            `json:"rejections"`
		ByCode     map[string]uint64 `json:"by_code"`
	}
	require.NoError(t, json.Unmarshal(alloc.Data, &data))
	assert.Equal(t, map[string]uint64{"insufficient_credits": rejected}, data.ByCode, "answered by the writer")
	assert.Equal(t, 1, balance.NumRequests)
	assert.Equal(t, 1, balance.NumErrors, "not_found")
	assert.True(t, strings.HasPrefix(balance.LastError, "not_found:"), balance.LastError)
	for _, s := range []string{"ledger.cmd.purchase_license", "ledger.cmd.activate_license"} {
		assert.Equal(t, 1, bySubject[s].NumRequests, s)
		assert.Zero(t, bySubject[s].NumErrors, s)
	}
}

// TestMicroDiscovery: $SRV.PING, INFO and STATS answer on all three subject forms ($SRV.X,
// $SRV.X.creditledger, $SRV.X.creditledger.<id>) with micro's types: the service's name, id,
// version, description, and every endpoint with its queue group and metadata.
func TestMicroDiscovery(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	var ping micro.Ping
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.PING", "").Data, &ping))
	assert.Equal(t, micro.PingResponseType, ping.Type)
	assert.Equal(t, "creditledger", ping.Name)
	require.NotEmpty(t, ping.ID)
	assert.NotEmpty(t, ping.Version)
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		for _, k := range [][2]string{{"", ""}, {"creditledger", ""}, {"creditledger", ping.ID}} {
			subj, err := micro.ControlSubject(verb, k[0], k[1])
			require.NoError(t, err)
			var id micro.ServiceIdentity
			require.NoError(t, json.Unmarshal(request(t, l, subj, "").Data, &id), subj)
			assert.Equal(t, micro.ServiceIdentity{Name: "creditledger", ID: ping.ID, Version: ping.Version,
				Metadata: map[string]string{}}, id, subj)
		}
	}

	var info micro.Info
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.INFO.creditledger."+ping.ID, "").Data, &info))
	assert.Equal(t, micro.InfoResponseType, info.Type)
	assert.Contains(t, info.Description, "credits ledger")
	bySubject := map[string]micro.EndpointInfo{}
	for _, e := range info.Endpoints {
		assert.Equal(t, micro.DefaultQueueGroup, e.QueueGroup, e.Subject)
		bySubject[e.Subject] = e
	}
	for _, s := range []string{"ledger.cmd.allocate_credits", "ledger.query.balance", "ledger.audit.checkpoint"} {
		assert.Contains(t, bySubject, s)
	}
	alloc := bySubject["ledger.cmd.allocate_credits"]
	assert.Equal(t, "allocate_credits", alloc.Name)
	assert.Equal(t, "AllocateCredits", alloc.Metadata["request_schema"])
	assert.Equal(t, "Accepted", alloc.Metadata["reply_schema"])
	assert.Equal(t, "Rejected", alloc.Metadata["error_schema"])
	assert.NotEmpty(t, alloc.Metadata["description"])

	var stats micro.Stats
	require.NoError(t, json.Unmarshal(request(t, l, "$SRV.STATS.creditledger."+ping.ID, "").Data, &stats))
	assert.Equal(t, micro.StatsResponseType, stats.Type)
	assert.False(t, stats.Started.IsZero())
	assert.Len(t, stats.Endpoints, len(info.Endpoints))
}
