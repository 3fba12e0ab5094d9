package jetstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestReadNearWithoutALeader: a replica left without its stream's leader (the two other servers
// stopped: no quorum, no election can end) still replays every event it holds through ReadNear,
// in order, passing over the ownership records, from any position; the leader's read (Read)
// cannot answer there. A node taking partitions over loads them this way while the stream elects
// a leader (writer.Writer.Preload).
func TestReadNearWithoutALeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers := jsCluster(t)
	conns := connectAll(t, servers)
	st := openElected(t, conns[0], jetstore.Config{Replicas: 3, Partitions: 4})
	for i := 0; i < 12; i++ {
		_, err := st.Append(ctx, []ledger.Record{ev(fmt.Sprintf("acct-%d", i%3), uint64(1+i/3), false)})
		require.NoError(t, err)
	}
	fenceAll(t, st, "n1", make([]uint64, 4)) // positions 13-16: not events
	for i := 12; i < 18; i++ {
		_, err := st.Append(ctx, []ledger.Record{ev(fmt.Sprintf("acct-%d", i%3), uint64(1+i/3), false)})
		require.NoError(t, err)
	}
	head, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(22), head)

	// The survivor: a replica that is not the stream's leader, once it holds the whole stream.
	info, err := jetstore.LeaderInfo(ctx, mustStream(t, st))
	require.NoError(t, err)
	survivor := -1
	for i, ns := range servers {
		if ns.Name() != info.Cluster.Leader {
			survivor = i
			break
		}
	}
	require.Eventually(t, func() bool { return replicaLast(servers[survivor]) == head }, 10*time.Second, 20*time.Millisecond)
	near, err := jetstore.Open(ctx, conns[survivor], jetstore.Config{})
	require.NoError(t, err)
	stopAllBut(t, servers, survivor)
	// A follower joins the stream's direct gets only once nats-server's check (every 2 s) finds it
	// caught up: under load that can come after the others stopped (ReadNear then answered "nobody
	// serves direct gets"). Past the head, a serving replica answers that it holds nothing more.
	require.Eventually(t, func() bool {
		_, err := near.ReadNear(ctx, head+1, func(ledger.Record) error { return nil })
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the survivor never served direct gets")

	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = near.Read(rctx, 1, func(ledger.Record) error { return nil })
	cancel()
	require.Error(t, err, "the leader's read answered without a leader")

	for _, from := range []uint64{1, 14, 20, 23} {
		var got []uint64
		last, err := near.ReadNear(ctx, from, func(r ledger.Record) error {
			assert.Equal(t, fmt.Sprintf("acct-%d", (positionEvent(r.Position))%3), r.AccountID, "position %d", r.Position)
			got = append(got, r.Position)
			return nil
		})
		require.NoError(t, err, "from %d", from)
		var want []uint64
		for p := max(from, 1); p <= head; p++ {
			if p < 13 || p > 16 {
				want = append(want, p)
			}
		}
		assert.Equal(t, want, got, "events from %d", from)
		assert.GreaterOrEqual(t, last, min(head, from-1), "from %d", from)
		assert.LessOrEqual(t, last, head, "from %d", from)
		if from <= head {
			assert.Equal(t, head, last, "from %d: the replica's last position", from)
		}
	}
}

// stopAllBut stops every server but servers[survivor], the stream's leader last, and returns
// once the survivor leads no stream. A server that stops hands the streams it leads to a peer
// that is still up (nats-server steps its raft groups down on shutdown): the leader stopped
// while the third server ran made the survivor the leader, with the third's vote, and the
// survivor then answered as the leader until it found its quorum lost (lostQuorumInterval, 10 s;
// "the leader's read answered without a leader"). Stopped last, the leader leaves the survivor
// an election that only the stopping leader's own vote could win; if a hand-over does reach the
// survivor all the same, it steps down once it has gone without a quorum long enough.
func stopAllBut(t *testing.T, servers []*natsserver.Server, survivor int) {
	t.Helper()
	leads := func(ns *natsserver.Server) bool {
		return ns.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, jetstore.StreamName)
	}
	var followers, leaders []*natsserver.Server
	for i, ns := range servers {
		switch {
		case i == survivor:
		case leads(ns):
			leaders = append(leaders, ns)
		default:
			followers = append(followers, ns)
		}
	}
	for _, ns := range append(followers, leaders...) {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	require.Eventually(t, func() bool { return !leads(servers[survivor]) }, 30*time.Second, 20*time.Millisecond,
		"the survivor went on leading the stream without a quorum")
}

// positionEvent is the append index of the event at position p in TestReadNearWithoutALeader
// (the four ownership records sit at 13-16).
func positionEvent(p uint64) uint64 {
	if p > 16 {
		return p - 5
	}
	return p - 1
}

// replicaLast is the last position of LEDGER on ns's own replica.
func replicaLast(ns *natsserver.Server) uint64 {
	jsz, err := ns.Jsz(&natsserver.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return 0
	}
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			if s.Name == jetstore.StreamName {
				return s.State.LastSeq
			}
		}
	}
	return 0
}
