package bench

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAllocateReleaseReleasesWhatItAllocated: the allocate-release mix keeps every pool where it
// started, so its commands stay acceptable for the whole load: each release names the account,
// feature and credits of the allocation before it, and the next command allocates again.
func TestAllocateReleaseReleasesWhatItAllocated(t *testing.T) {
	d := newDriver(nil, "t", cpuMeter{})
	r := rand.New(rand.NewPCG(1, 2))
	var held *heldCredits
	for i := 0; i < 100; i++ {
		name, body, next := d.allocateRelease(r, d.account(i), held)
		if held == nil {
			require.Equal(t, "allocate_credits", name)
			require.NotNil(t, next)
			assert.Equal(t, d.account(i), body["account_id"])
			assert.Equal(t, next.feature, body["feature"])
			assert.Equal(t, next.credits, body["credits"])
		} else {
			require.Equal(t, "release_credits", name)
			assert.Nil(t, next)
			assert.Equal(t, held.acct, body["account_id"])
			assert.Equal(t, held.feature, body["feature"])
			assert.Equal(t, held.credits, body["credits"])
		}
		assert.NotEmpty(t, body["command_id"])
		held = next
	}
	assert.True(t, ValidMix(MixAllocateRelease) && ValidMix(MixFull) && ValidMix("") && !ValidMix("random"))
}
