package productiontest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// TestLostReservationsRefuseToStart: in a store with partitioned subjects the LEDGER_IDS bucket
// is the only record, across partitions, of which account holds each license id (a node reads
// only its own partitions). A node that finds it missing (or empty, without the mark made while
// the stream was empty) beside a stream with events refuses to start (ErrClaimsLost), every time,
// rather than accept ids that accounts hold; with the bucket restored, it starts and still
// refuses the held id.
func TestLostReservationsRefuseToStart(t *testing.T) {
	t.Parallel()
	url, nc, cl := heldLicenseStopped(t)

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctxT(t), jetstore.ClaimsBucket)
	require.NoError(t, err)
	var backup []jetstream.KeyValueEntry
	keys, err := kv.ListKeys(ctxT(t))
	require.NoError(t, err)
	for k := range keys.Keys() {
		e, err := kv.Get(ctxT(t), k)
		require.NoError(t, err)
		backup = append(backup, e)
	}
	require.Len(t, backup, 2, "the reservation and the mark")
	require.NoError(t, js.DeleteKeyValue(ctxT(t), jetstore.ClaimsBucket))

	for attempt := range 2 { // refused again after a refusal: it leaves the empty bucket unmarked
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		srv, err := server.Start(ctx, sharedNode(t, url, "a", nil))
		cancel()
		if err == nil {
			srv.Shutdown(context.Background())
		}
		require.Error(t, err, "start %d with the reservations gone", attempt+1)
		assert.True(t, errors.Is(err, jetstore.ErrClaimsLost), err.Error())
	}

	// The operator restores the bucket from a backup: every key it held, the mark among them.
	kv, err = js.KeyValue(ctxT(t), jetstore.ClaimsBucket)
	require.NoError(t, err, "the refused start left the empty bucket it made")
	for _, e := range backup {
		_, err = kv.Create(ctxT(t), e.Key(), e.Value())
		require.NoError(t, err)
	}
	second := start(t, sharedNode(t, url, "a", nil))
	defer second.Shutdown(context.Background())
	_, err = cl.PurchaseLicense(ctxT(t), purchase("p-2", "thief", "L-held", "10"))
	assert.Equal(t, "already_exists", string(code(err)), "the restored reservation holds")
}

// TestRebuiltReservationsLetTheLedgerStart: with the bucket lost, `creditledger reservations
// rebuild` (server.RebuildReservations) reserves from the stream every id its events created and
// marks the bucket: the ledger starts again and still refuses the held license id to another
// account. A second rebuild is refused: the bucket is no longer lost.
func TestRebuiltReservationsLetTheLedgerStart(t *testing.T) {
	t.Parallel()
	url, nc, cl := heldLicenseStopped(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(ctxT(t), jetstore.ClaimsBucket))

	empty, err := nats.Connect(jetStreamServer(t)) // no ledger there
	require.NoError(t, err)
	defer empty.Close()
	_, err = server.RebuildReservations(ctxT(t), empty, time.Now())
	assert.ErrorIs(t, err, jetstream.ErrStreamNotFound, "a server without the stream (a wrong URL)")
	jsEmpty, err := jetstream.New(empty)
	require.NoError(t, err)
	_, err = jsEmpty.KeyValue(ctxT(t), jetstore.ClaimsBucket)
	assert.ErrorIs(t, err, jetstream.ErrBucketNotFound, "nothing made there")

	got, err := server.RebuildReservations(ctxT(t), nc, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, got.IDs, "the one license id")
	assert.Empty(t, got.Clashes)
	_, err = server.RebuildReservations(ctxT(t), nc, time.Now())
	assert.ErrorIs(t, err, server.ErrReservationsKept)

	second := start(t, sharedNode(t, url, "a", nil))
	defer second.Shutdown(context.Background())
	_, err = cl.PurchaseLicense(ctxT(t), purchase("p-2", "thief", "L-held", "10"))
	assert.Equal(t, "already_exists", string(code(err)), "the rebuilt reservation holds")
}

// heldLicenseStopped runs a ledger on a fresh server until account holder has bought license
// L-held, and stops it: the server's URL, a connection and a client to it.
func heldLicenseStopped(t *testing.T) (string, *nats.Conn, *commands.Client) {
	t.Helper()
	url := jetStreamServer(t)
	first := start(t, sharedNode(t, url, "a", nil))
	nc := connectTo(t, url)
	cl := client(t, nc)
	_, err := cl.PurchaseLicense(ctxT(t), purchase("p-1", "holder", "L-held", "10"))
	require.NoError(t, err)
	first.Shutdown(context.Background())
	return url, nc, cl
}
