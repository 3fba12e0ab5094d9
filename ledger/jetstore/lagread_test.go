package jetstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestReadDoesNotEndAtALaggingReplicasLastMessage: a read's ordered consumer is R1, placed by
// the meta leader on any replica of the stream, and one may lag: the network cuts it off from
// the stream's leader (not from the meta leader), and the two others go on appending. Its
// consumer's num_pending is 0 at the last message it holds, before the head the read took from
// the leader; a read that ended there came back short without a sign (a writer's load missed
// the events in between and caught up past them). Each read must reach the head, or fail.
func TestReadDoesNotEndAtALaggingReplicasLastMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers, proxies := proxiedCluster(t)
	conns := connectAll(t, servers)
	st := openElected(t, conns[0], jetstore.Config{Replicas: 3, Partitions: 4})

	meta, leader := -1, -1 // the meta leader, and the stream's leader on another server
	require.Eventually(t, func() bool {
		meta, leader = -1, -1
		info, err := jetstore.LeaderInfo(ctx, mustStream(t, st))
		if err != nil || info.Cluster == nil {
			return false
		}
		for i, ns := range servers {
			if ns.JetStreamIsLeader() {
				meta = i
			}
			if ns.Name() == info.Cluster.Leader {
				leader = i
			}
		}
		if meta >= 0 && meta == leader {
			_, _ = conns[meta].Request("$JS.API.STREAM.LEADER.STEPDOWN."+jetstore.StreamName, nil, 2*time.Second)
			return false
		}
		return meta >= 0 && leader >= 0
	}, 30*time.Second, 200*time.Millisecond, "no stream leader apart from the meta leader")
	lag := 3 - meta - leader
	st, err := jetstore.Open(ctx, conns[meta], jetstore.Config{}) // not through the replica cut off
	require.NoError(t, err)

	appendSome := func(from, to int) {
		for i := from; i <= to; i++ {
			rec := []ledger.Record{ev(fmt.Sprintf("acct-%d", i%5), uint64(1+i/5), false)}
			// The cut replica may call an election that the meta leader's server votes for: the
			// stream has no leader for a moment and an append finds no responders (stored
			// nothing; CI saw it once). Appended again until a leader answers.
			_, err := st.Append(ctx, rec)
			for deadline := time.Now().Add(30 * time.Second); errors.Is(err, nats.ErrNoResponders) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond) // a retry interval, not a synchronisation
				_, err = st.Append(ctx, rec)
			}
			require.NoError(t, err, "append %d", i)
		}
	}
	appendSome(0, 9)
	proxies[leader][lag].Cut()
	proxies[lag][leader].Cut()
	appendSome(10, 19) // acknowledged by the leader and the meta leader's server
	head, err := st.Head(ctx)
	require.NoError(t, err)

	// One read in three lands on the lagging replica; twenty reads miss it once in 3,000 runs.
	// There, the read waits for the head (it is cut off: until its deadline), or comes back short.
	for i := 0; i < 20; i++ {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		n := 0
		got, err := st.Read(rctx, 1, func(ledger.Record) error { n++; return nil })
		cancel()
		if err != nil {
			return // it landed on the lagging replica and waited (or failed): not short
		}
		assert.Equal(t, head, got)
		require.Equal(t, 20, n, "read %d came back short of the head without an error", i)
	}
}

// mustStream is the store's LEDGER stream handle.
func mustStream(t *testing.T, st *jetstore.Store) jetstream.Stream {
	t.Helper()
	s, err := st.JetStream().Stream(context.Background(), jetstore.StreamName)
	require.NoError(t, err)
	return s
}
