package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCountList(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "none", countList(nil))
	assert.Equal(t, "insufficient_credits 120, already_exists 3, not_found 3",
		countList(map[string]int{"not_found": 3, "insufficient_credits": 120, "already_exists": 3}))
}

func TestRatiosCountAnsweredBesideAccepted(t *testing.T) {
	t.Parallel()
	r := &Report{Raw: RawBaselines{AtomicBatch1000: 10000, BatchOfClients: 64, AtomicBatchOfClients: 5000},
		Load: LoadResult{AcceptedPerSecond: 1000, AnsweredPerSecond: 1500, CommandsPerSecond: 1600}}
	got := ratios(r)
	assert.InDelta(t, 0.2, got["accepted_vs_atomic_batch_of_clients"], 1e-9)
	assert.InDelta(t, 0.3, got["answered_vs_atomic_batch_of_clients"], 1e-9)
	assert.InDelta(t, 0.15, got["answered_vs_atomic_batch_1000"], 1e-9)
}

// The CPU bound: two cores at 200 us a request, where 10 requests (8 commands, 2 queries) bring
// 5 accepted commands, carry 2e6/400 = 5,000 accepted a second; against a ceiling of 10,000
// that is 0.5. Only for an embedded run, whose process CPU covers the ledger and its server.
func TestRatiosBoundByTheCPUPerRequest(t *testing.T) {
	t.Parallel()
	r := &Report{Cores: 2, Embedded: true,
		Raw:  RawBaselines{AtomicBatch1000: 20000, BatchOfClients: 64, AtomicBatchOfClients: 10000},
		Load: LoadResult{CPUMicrosPerOp: 200, Commands: 8, Queries: 2, Accepted: 5}}
	got := ratios(r)
	assert.InDelta(t, 0.5, got["accepted_cpu_bound_vs_atomic_batch_of_clients"], 1e-9)
	assert.InDelta(t, 0.25, got["accepted_cpu_bound_vs_atomic_batch_1000"], 1e-9)
	r.Embedded = false // the process is the load tool alone
	assert.NotContains(t, ratios(r), "accepted_cpu_bound_vs_atomic_batch_of_clients")
}
