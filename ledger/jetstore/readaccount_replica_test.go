package jetstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestReadAccountReadsAfterEveryWriteOnAReplica: a writer re-reads an account after a conflict
// or an uncertain append and decides from what it reads, rejections included. On a replicated
// stream any current replica answers a direct get, and one may not have applied the last write
// yet: an account read through a follower's server right after each append, acknowledged by the
// leader, must hold that append (its last message is the leader's).
func TestReadAccountReadsAfterEveryWriteOnAReplica(t *testing.T) {
	t.Parallel()
	servers := jsCluster(t)
	ctx := context.Background()
	conns := make([]*nats.Conn, len(servers))
	for i, ns := range servers {
		nc, err := nats.Connect(ns.ClientURL())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		conns[i] = nc
	}
	var st *jetstore.Store
	require.Eventually(t, func() bool {
		var err error
		st, err = jetstore.Open(ctx, conns[0], jetstore.Config{Replicas: 3, Partitions: 4})
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the replicated stream was never created")
	info, err := st.JetStream().Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	leader := info.CachedInfo().Cluster.Leader
	var writer, reader *jetstore.Store
	for i, ns := range servers {
		s, err := jetstore.Open(ctx, conns[i], jetstore.Config{})
		require.NoError(t, err)
		if ns.Name() == leader {
			writer = s
		} else {
			reader = s
		}
	}
	require.NotNil(t, writer)
	const acct = "replica-acct"
	for i := 1; i <= 120; i++ {
		pos, err := writer.Append(ctx, []ledger.Record{{AccountID: acct, Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), Version: uint64(i)}})
		require.NoError(t, err)
		recs, err := reader.ReadAccount(ctx, acct, 0)
		require.NoError(t, err)
		require.Equal(t, i, len(recs), "read %d, right after the append", i)
		require.Equal(t, pos[0], recs[i-1].Position)
	}
}
