package writer_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// A rejection written to the rejection log is replayed by a writer that starts without any
// snapshot (as after a crash), even though the account would now accept the command.
func TestRejectionSurvivesACrash(t *testing.T) {
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	r.rejections = log

	w1, stop1 := r.start(t, nil, 0)
	require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L", "source": "sales", "credits": "10"}).Err)
	require.Nil(t, do(t, w1, "activate_license", map[string]any{"command_id": "act", "account_id": "acme", "license_id": "L"}).Err)
	first := do(t, w1, "allocate_credits", map[string]any{"command_id": "big", "account_id": "acme", "feature": "file_security", "credits": "50"})
	require.NotNil(t, first.Err)
	require.Equal(t, ledger.CodeInsufficientCredits, first.Err.Code)
	require.Nil(t, do(t, w1, "upgrade_contract", map[string]any{"command_id": "up", "account_id": "acme", "license_id": "L", "additional_credits": "100"}).Err)
	stop1() // no snapshot store: the next writer knows only the streams

	w2, stop2 := r.start(t, nil, 0)
	defer stop2()
	again := do(t, w2, "allocate_credits", map[string]any{"command_id": "big", "account_id": "acme", "feature": "file_security", "credits": "50"})
	require.NotNil(t, again.Err, "the retry must get the first answer, not a fresh decision")
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Err, again.Err)
	head := w2.Head()
	other := do(t, w2, "allocate_credits", map[string]any{"command_id": "big", "account_id": "acme", "feature": "file_security", "credits": "5"})
	require.NotNil(t, other.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, other.Err.Code)
	assert.Equal(t, head, w2.Head(), "nothing appended")
}

// TestLaterRejectionWins: when the log holds two rejections of one command_id (the first from a
// round whose write failed part-way, never sent), a restart replays the later, sent one.
func TestLaterRejectionWins(t *testing.T) {
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	r.rejections = log
	body := map[string]any{"command_id": "c", "account_id": "acme", "feature": "file_security", "credits": "5"}
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	p, err := commands.Parse("allocate_credits", raw)
	require.NoError(t, err)
	unsent := ledger.Rejection{CommandID: "c", AccountID: "acme", BodyHash: p.BodyHash,
		Err: &ledger.Error{Code: ledger.CodeUnknownFeature, Message: "never sent"}}
	sent := ledger.Rejection{CommandID: "c", AccountID: "acme", BodyHash: p.BodyHash,
		Err: &ledger.Error{Code: ledger.CodeInsufficientCredits, Message: "the answer given"}}
	for _, rj := range []ledger.Rejection{unsent, sent} {
		_, err = log.AppendRejections(context.Background(), []ledger.Rejection{rj})
		require.NoError(t, err)
	}

	w, stop := r.start(t, nil, 0)
	defer stop()
	again := do(t, w, "allocate_credits", body)
	require.NotNil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, sent.Err, again.Err)
}
