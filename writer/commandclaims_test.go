package writer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// ownsAll is partOwner for a writer that holds every partition.
type ownsAll struct{ partOwner }

func (ownsAll) OwnsEverything() bool { return true }

// A command_id first used on an account of one writer's partition is refused
// idempotency_key_reused when it comes, with another body, for an account of a partition another
// writer holds, accepted or rejected the first time, and nothing is appended for it; a retry of
// the first command is still replayed by its own writer, and a new command id of either writer is
// recorded once and decided. Without the shared record the second writer decided it afresh.
func TestCommandIDReusedInAnotherPartitionIsRefused(t *testing.T) {
	t.Parallel()
	st, claims := memstore.New(), &memstore.CommandClaims{}
	withClaims := func(o *writer.Options) { o.Commands = claims }
	a0, a2 := accountsIn(0, 1, "cc")[0], accountsIn(2, 1, "cc")[0]
	w1, _ := partWriterWith(t, st, nil, withClaims, 0, 1)
	w2, _ := partWriterWith(t, st, nil, withClaims, 2, 3)
	run(t, w1)
	run(t, w2)

	first := send(t, w1, "purchase_license", buyL("buy-1", a0, "L-a0"))
	require.Nil(t, first.Err)
	require.Nil(t, send(t, w2, "purchase_license", buyL("buy-2", a2, "L-a2")).Err)
	head := storeHead(t, st)

	reused := send(t, w2, "purchase_license", buyL("buy-1", a2, "L-other"))
	require.NotNil(t, reused.Err, "a command_id accepted on another partition's account")
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, reused.Err.Code)

	over := map[string]any{"command_id": "alloc-1", "account_id": a0, "feature": "file_security", "credits": "500"}
	rejected := send(t, w1, "allocate_credits", over)
	require.NotNil(t, rejected.Err)
	require.Equal(t, ledger.CodeInsufficientCredits, rejected.Err.Code)
	over["account_id"], over["credits"] = a2, "5"
	reusedRejected := send(t, w2, "allocate_credits", over)
	require.NotNil(t, reusedRejected.Err, "a command_id rejected on another partition's account")
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, reusedRejected.Err.Code)

	assert.Equal(t, head, storeHead(t, st), "nothing appended for a reused command_id")
	again := send(t, w1, "purchase_license", buyL("buy-1", a0, "L-a0"))
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Position, again.Position)
	asked := claims.Asked()
	require.Nil(t, send(t, w1, "purchase_license", buyL("buy-1", a0, "L-a0")).Err)
	assert.Equal(t, asked, claims.Asked(), "a retry its writer knows is not recorded again")
	assert.Equal(t, uint64(2), w1.Stats().CommandClaims, "w1 recorded buy-1 and alloc-1")
}

// A writer that owns every partition records no command id (its own record knows them all),
// unless other processes may share its store (RecordEveryCommand); a record that cannot be reached fails new commands unavailable, appending nothing, and a retry
// with the same command_id once it answers is decided.
func TestCommandIDRecordOnlyWhereOthersDecide(t *testing.T) {
	t.Parallel()
	st, claims := memstore.New(), &memstore.CommandClaims{}
	a0 := accountsIn(0, 1, "co")[0]
	alone, _ := partWriterWith(t, st, nil, func(o *writer.Options) {
		o.Commands = claims
		o.Owner = ownsAll{o.Owner.(partOwner)}
	}, 0, 1, 2, 3)
	stop := run(t, alone)
	require.Nil(t, send(t, alone, "purchase_license", buyL("alone-1", a0, "L-alone")).Err)
	assert.Zero(t, claims.Asked(), "a writer of every partition records nothing")
	stop()

	// Where other processes may share the store, a writer that owns every partition now records
	// all the same: it may give partitions away later.
	shared, _ := partWriterWith(t, st, nil, func(o *writer.Options) {
		o.Commands, o.RecordEveryCommand = claims, true
		o.Owner = ownsAll{o.Owner.(partOwner)}
	}, 0, 1, 2, 3)
	stop = run(t, shared)
	require.Nil(t, send(t, shared, "purchase_license", buyL("shared-1", a0, "L-shared")).Err)
	assert.Equal(t, 1, claims.Asked(), "a writer that may share the store records while it owns everything")
	stop()

	w, _ := partWriterWith(t, st, nil, func(o *writer.Options) { o.Commands = claims }, 0, 1)
	run(t, w)
	claims.FailWith(errors.New("bucket unreachable"))
	head := storeHead(t, st)
	res := send(t, w, "purchase_license", buyL("part-1", a0, "L-part"))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeUnavailable, res.Err.Code)
	assert.Equal(t, head, storeHead(t, st), "nothing appended while the record cannot be reached")
	claims.FailWith(nil)
	res = send(t, w, "purchase_license", buyL("part-1", a0, "L-part"))
	require.Nil(t, res.Err)
	assert.False(t, res.Replayed)
}

// storeHead is the store's last position (a read to the end).
func storeHead(t *testing.T, st ledger.Store) uint64 {
	t.Helper()
	head, err := st.Read(context.Background(), 1, func(ledger.Record) error { return nil })
	require.NoError(t, err)
	return head
}
