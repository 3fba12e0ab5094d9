package jetstore_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// A rejection log that is deleted, or deleted and created again, is not opened as if nothing
// happened: LEDGER records the log it has (its creation time), and opening a store whose log is
// missing or newer is ErrRejectionsLost, with the log left as it is (not created again, empty),
// until the operator accepts the loss. Before, the next open created it again and every
// rejection it held was forgotten without a word.
func TestLostRejectionLogIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nc := jsServerConn(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	log, err := jetstore.OpenRejections(ctx, st, 1)
	require.NoError(t, err)
	_, err = log.AppendRejections(ctx, []ledger.Rejection{{CommandID: "c1", AccountID: "a1", BodyHash: "h",
		Err: ledger.Reject(ledger.CodeInsufficientCredits, "no")}})
	require.NoError(t, err)
	_, err = jetstore.OpenRejections(ctx, st, 1) // as a restart does: the log is the one recorded
	require.NoError(t, err)

	require.NoError(t, js.DeleteStream(ctx, jetstore.RejectionStream))
	_, err = jetstore.OpenRejections(ctx, st, 1)
	require.ErrorIs(t, err, jetstore.ErrRejectionsLost)
	_, err = js.Stream(ctx, jetstore.RejectionStream)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "the lost log is not created again")

	// Created again by someone else (an operator, another deployment): still not the log.
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: jetstore.RejectionStream, Subjects: []string{jetstore.RejectionSubjectPrefix + ">"}})
	require.NoError(t, err)
	_, err = jetstore.OpenRejections(ctx, st, 1)
	require.ErrorIs(t, err, jetstore.ErrRejectionsLost)

	lost, err := jetstore.AcceptLostRejections(ctx, st)
	require.NoError(t, err)
	assert.True(t, lost)
	_, err = jetstore.OpenRejections(ctx, st, 1)
	require.NoError(t, err, "the operator accepted the loss")
	lost, err = jetstore.AcceptLostRejections(ctx, st)
	require.NoError(t, err)
	assert.False(t, lost, "nothing more was lost")
}

// A store whose LEDGER records no rejection log (an older build's) opens as before, and is
// recorded then: deleting its log afterwards is found.
func TestRejectionLogOfAnOlderStoreIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nc := jsServerConn(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	_, err = jetstore.OpenRejections(ctx, st, 1)
	require.NoError(t, err)
	ledgerStream, err := js.Stream(ctx, jetstore.StreamName) // as an older build left it: no record
	require.NoError(t, err)
	cfg := ledgerStream.CachedInfo().Config
	require.Contains(t, cfg.Metadata, jetstore.RejectionsCreatedMetadata)
	delete(cfg.Metadata, jetstore.RejectionsCreatedMetadata)
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)

	_, err = jetstore.OpenRejections(ctx, st, 1)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(ctx, jetstore.RejectionStream))
	_, err = jetstore.OpenRejections(ctx, st, 1)
	require.ErrorIs(t, err, jetstore.ErrRejectionsLost)
}
