package writer_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// fencedRig fences every partition of the rig's stream (4 partitions) and returns the owner a
// writer of that node is given: its single-record appends carry the partition fence instead of
// the account's head check.
func fencedRig(t *testing.T, r *rig) *fencedOwner {
	t.Helper()
	claims := make([]ledger.FenceClaim, 4)
	for i := range claims {
		claims[i] = fenceClaim(i, "node-a", 0)
	}
	pos, err := r.store.Fence(context.Background(), claims)
	require.NoError(t, err)
	o := &fencedOwner{fences: map[int]uint64{}, lost: map[int]bool{}}
	for i, at := range pos {
		o.fences[i] = at
	}
	return o
}

// publishForeign stores a message that is no event on the account's subject, as a client with
// the ledger's credentials could, and returns its position.
func publishForeign(t *testing.T, r *rig, accountID string) uint64 {
	t.Helper()
	nc, err := nats.Connect(r.url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstreamFor(nc)
	require.NoError(t, err)
	ack, err := js.Publish(context.Background(), jetstore.DefaultSubjects.Of(accountID), []byte(`{"forged":true}`))
	require.NoError(t, err)
	return ack.Sequence
}

// TestMarkBrokenRefusesTheAccount: a foreign message lands on an account whose appends carry the
// partition fence in place of its head check, so the store would take the next command on top
// of it (bob shows that). Told of the message (MarkBroken, as the projector does), the writer
// refuses the account history_broken with the message's position and appends nothing; a second
// report changes nothing.
func TestMarkBrokenRefusesTheAccount(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	o := fencedRig(t, r)
	w := newWriter(t, r, r.store, writer.Options{Owner: o, Fences: o})
	stop := run(t, w)
	defer stop()
	buyBob := map[string]any{"command_id": "b1", "account_id": "bob", "license_id": "L2", "source": "sales", "credits": "5"}
	require.Nil(t, do(t, w, "purchase_license", buyL1).Err)
	require.Nil(t, do(t, w, "purchase_license", buyBob).Err)

	// Unreported, the fence-carrying append lands on top of the foreign message.
	publishForeign(t, r, "bob")
	res := do(t, w, "activate_license", map[string]any{"command_id": "b2", "account_id": "bob", "license_id": "L2"})
	require.Nil(t, res.Err, "the window the report closes: the append carried the fence, not bob's head")

	// Reported, the account is refused before its next append.
	at := publishForeign(t, r, "acme")
	w.MarkBroken("acme", at, "undecodable")
	refusedAsBroken(t, w, r.store, at, "activate_license", actL1)
	w.MarkBroken("acme", at+1, "again")
	refusedAsBroken(t, w, r.store, at, "allocate_credits", allocA("x2"))

	// An account whose first message is the foreign one is refused from its first command.
	first := publishForeign(t, r, "carol")
	w.MarkBroken("carol", first, "undecodable")
	res = do(t, w, "purchase_license", map[string]any{"command_id": "c1", "account_id": "carol", "license_id": "L3", "source": "sales", "credits": "5"})
	require.NotNil(t, res.Err)
	assert.ErrorIs(t, res.Err, ledger.ErrHistoryBroken)
	assert.Equal(t, strconv.FormatUint(first, 10), res.Err.Data["position"])
	head, err := r.store.Head(context.Background())
	require.NoError(t, err)
	assert.Equal(t, first, head, "nothing appended")

	assert.EqualValues(t, 2, w.Stats().MarkedBroken)
	assert.Zero(t, w.Stats().MarksDropped)
}

// TestMarkBrokenIgnoresWhatTheWriterVerified: a report on an account of a partition the writer
// does not hold, or
// at a position the writer verified itself (its own head-checked append, or a load that folded
// the record), leaves the account's commands alone.
func TestMarkBrokenIgnoresWhatTheWriterVerified(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// No fences: every append carries its account's head check. Nobody's partition is another's.
	w := newWriter(t, r, r.store, writer.Options{Holds: func(id string) bool { return id != "nobody" }})
	stop := run(t, w)
	first := do(t, w, "purchase_license", buyL1)
	require.Nil(t, first.Err)
	w.MarkBroken("acme", first.Position, "the projector is confused")
	w.MarkBroken("nobody", first.Position+1, "an account of a partition this writer does not hold")
	require.Nil(t, do(t, w, "activate_license", actL1).Err)
	stop()

	w2, stop2 := r.start(t, nil, 0) // a load verifies every record it folds
	defer stop2()
	w2.MarkBroken("acme", first.Position, "replayed from an old report")
	require.Nil(t, do(t, w2, "allocate_credits", allocA("x1")).Err)
	assert.Zero(t, w.Stats().MarkedBroken+w2.Stats().MarkedBroken)
}

// TestMarkBrokenNeverBlocks: reports beyond the bounded queue of a writer that is not taking them
// are dropped and counted, and the caller (the projector, under its lock) is never held up.
func TestMarkBrokenNeverBlocks(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	w := newWriter(t, r, r.store, writer.Options{}) // loaded, not running
	for i := range 1000 {
		w.MarkBroken("acme", uint64(i+1), "flood")
	}
	assert.Positive(t, w.Stats().MarksDropped)
	assert.Less(t, w.Stats().MarksDropped, uint64(1000))
}
