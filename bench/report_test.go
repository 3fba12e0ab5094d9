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
