package writer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// Two writers that both believe they own an account (what partition leases prevent, so this is
// the last line of defence): each append of the stale one is refused by the
// expected-last-subject-sequence check, and it re-reads the account and re-decides.
func TestTwoWritersReDecideOnConflict(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.start(t, nil, 0)
	defer stop1()
	w2, stop2 := r.startSecond(t)
	defer stop2()

	buy := map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L1", "source": "sales", "credits": "100"}
	require.Nil(t, do(t, w1, "purchase_license", buy).Err)
	// w2 never saw the purchase: its append conflicts, it re-reads acme and appends after it.
	buy2 := do(t, w2, "purchase_license", map[string]any{"command_id": "buy2", "account_id": "acme", "license_id": "L2", "source": "sales", "credits": "5"})
	require.Nil(t, buy2.Err)
	assert.Equal(t, uint64(2), buy2.Version)
	// w1 is stale now; its activation lands after re-reading.
	act := map[string]any{"command_id": "act", "account_id": "acme", "license_id": "L1"}
	activated := do(t, w1, "activate_license", act)
	require.Nil(t, activated.Err)
	assert.Equal(t, uint64(3), activated.Version)
	// A retry of w1's command sent to w2 is answered from the stream, not appended twice.
	again := do(t, w2, "activate_license", act)
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, activated.Position, again.Position)
	// The pool is enforced across both.
	require.Nil(t, do(t, w1, "allocate_credits", map[string]any{"command_id": "alloc", "account_id": "acme", "feature": "file_security", "credits": "60"}).Err)
	over := do(t, w2, "allocate_credits", map[string]any{"command_id": "over", "account_id": "acme", "feature": "file_security", "credits": "41"})
	require.NotNil(t, over.Err)
	assert.Equal(t, ledger.CodeInsufficientCredits, over.Err.Code)
	assert.Equal(t, "40", over.Err.Data["available"])
}
