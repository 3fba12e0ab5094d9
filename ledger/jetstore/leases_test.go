package jetstore_test

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/partition"
)

func leaseServer(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// Two keepers on one lease bucket: they split the partitions, a graceful stop of one hands its
// leases back (the other takes them on its next step, not after the TTL), and a lease renewed by
// its holder cannot be acquired by the other.
func TestKeepersShareAndHandOver(t *testing.T) {
	t.Parallel()
	js := leaseServer(t)
	ctx := context.Background()
	leases, err := jetstore.OpenLeases(ctx, js, 1, time.Hour)
	require.NoError(t, err)
	defer leases.Close()
	keeper := func(name string) *partition.Keeper {
		k, err := partition.NewKeeper(partition.Config{Node: name, Partitions: 64, Leases: leases, Log: zerolog.Nop()})
		require.NoError(t, err)
		return k
	}
	a, b := keeper("a"), keeper("b")
	require.NoError(t, a.Step(ctx))
	assert.Len(t, a.Held(), 64, "alone, a takes every partition")
	require.NoError(t, b.Step(ctx)) // b joins: nothing free yet
	for i := 0; i < 3; i++ {
		require.NoError(t, a.Step(ctx)) // a sees b and hands b's share over
		require.NoError(t, b.Step(ctx))
	}
	assert.Equal(t, 64, len(a.Held())+len(b.Held()))
	assert.NotEmpty(t, b.Held())
	for p := range a.Held() {
		_, held := b.Held()[p]
		assert.False(t, held, "partition %d held twice", p)
	}
	a.ReleaseAll(ctx)
	assert.Empty(t, a.Held())
	require.NoError(t, b.Step(ctx))
	assert.Len(t, b.Held(), 64, "b takes a's partitions at once after a's graceful stop")
}

// Holder reads a lease's node and revision from the bucket's leader (nobody's for a key never
// written or deleted); Seize takes it only at the revision read, so never after its holder
// renewed it, and the node it was seized from then finds it lost.
func TestSeizeTakesALeaseOnlyAtTheRevisionRead(t *testing.T) {
	t.Parallel()
	js := leaseServer(t)
	ctx := context.Background()
	leases, err := jetstore.OpenLeases(ctx, js, 1, time.Hour)
	require.NoError(t, err)
	defer leases.Close()
	revB, err := leases.Acquire(ctx, 1, "b")
	require.NoError(t, err)
	revC, err := leases.Acquire(ctx, 2, "c")
	require.NoError(t, err)
	require.NoError(t, leases.Release(ctx, 2, "c", revC))

	holder, rev, err := leases.Holder(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "b", holder)
	assert.Equal(t, revB, rev)
	for _, p := range []int{2, 3} { // released (a delete marker), never written
		holder, rev, err = leases.Holder(ctx, p)
		require.NoError(t, err)
		assert.Empty(t, holder, "partition %d", p)
		assert.Zero(t, rev, "partition %d", p)
	}

	renewed, err := leases.Renew(ctx, 1, "b", revB)
	require.NoError(t, err)
	_, err = leases.Seize(ctx, 1, "a", revB)
	assert.ErrorIs(t, err, partition.ErrHeld, "b renewed its lease after it was read")
	revA, err := leases.Seize(ctx, 1, "a", renewed)
	require.NoError(t, err)
	assert.Greater(t, revA, renewed)
	_, err = leases.Renew(ctx, 1, "b", renewed)
	assert.ErrorIs(t, err, partition.ErrLost, "b's lease was seized")
	_, err = leases.Renew(ctx, 1, "a", revA)
	assert.NoError(t, err)
}
