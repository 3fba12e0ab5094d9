package writer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// Two writers on one stream (two nodes): each append of a stale writer is refused by the
// expected-last-subject-sequence check, and the writer re-reads the account and re-decides.
func TestTwoWritersReDecideOnConflict(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.startShared(t)
	defer stop1()
	w2, stop2 := r.startShared(t)
	defer stop2()

	buy := map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L1", "source": "sales", "credits": "100"}
	require.Nil(t, do(t, w1, "purchase_license", buy).Err)
	// w2 never saw the purchase: its append conflicts, it re-reads acme and the activation succeeds.
	act := do(t, w2, "activate_license", map[string]any{"command_id": "act", "account_id": "acme", "license_id": "L1"})
	require.Nil(t, act.Err)
	assert.Equal(t, uint64(2), act.Version)
	// w1 is stale now; its allocation sees the activation after re-reading.
	alloc := do(t, w1, "allocate_credits", map[string]any{"command_id": "alloc", "account_id": "acme", "feature": "file_security", "credits": "60"})
	require.Nil(t, alloc.Err)
	assert.Equal(t, uint64(3), alloc.Version)
	// A retry of w1's command sent to w2 (another node) is answered from the stream, not appended twice.
	again := do(t, w2, "allocate_credits", map[string]any{"command_id": "alloc", "account_id": "acme", "feature": "file_security", "credits": "60"})
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, alloc.Position, again.Position)
	// And the pool is enforced across both: only 40 credits are left.
	over := do(t, w2, "allocate_credits", map[string]any{"command_id": "over", "account_id": "acme", "feature": "file_security", "credits": "41"})
	require.NotNil(t, over.Err)
	assert.Equal(t, ledger.CodeInsufficientCredits, over.Err.Code)
	assert.Equal(t, "40", over.Err.Data["available"])
}
