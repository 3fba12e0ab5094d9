package jetstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// apiCalls counts the JetStream API requests made on a server (a plain subscriber gets a copy
// of each), by subject with the stream name cut off.
type apiCalls struct {
	mu      sync.Mutex
	n       map[string]int
	markers chan struct{}
}

const apiMarker = "test.api.marker"

func watchAPI(t *testing.T, url string) *apiCalls {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	c := &apiCalls{n: map[string]int{}, markers: make(chan struct{}, 1)}
	// Both subscriptions feed one channel, which the connection's reader fills in the order the
	// server sent: a marker is counted after every copy before it. (Two callback subscriptions
	// each have a goroutine of their own: a marker's could run before the last copy was counted.)
	msgs := make(chan *nats.Msg, 65536)
	_, err = nc.ChanSubscribe("$JS.API.>", msgs)
	require.NoError(t, err)
	_, err = nc.ChanSubscribe(apiMarker, msgs)
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			var m *nats.Msg
			select {
			case m = <-msgs:
			case <-done:
				return
			}
			if m.Subject != apiMarker {
				c.mu.Lock()
				c.n[strings.TrimSuffix(m.Subject, "."+jetstore.StreamName)]++
				c.mu.Unlock()
				continue
			}
			select {
			case c.markers <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	require.NoError(t, nc.Flush())
	return c
}

// since returns the requests conn made since the last call, and starts counting afresh: a
// marker conn publishes after them arrives after their copies.
func (c *apiCalls) since(t *testing.T, conn *nats.Conn) map[string]int {
	t.Helper()
	require.NoError(t, conn.Publish(apiMarker, nil))
	select {
	case <-c.markers:
	case <-time.After(5 * time.Second):
		t.Fatal("the marker never arrived")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[string]int{}
	return out
}

// TestFenceHeadsIsOneRequest: the fence heads of every partition of a store are read with one
// direct get on a single server (ledger.Store.FenceHeads), right after the records were stored,
// after one stream info for the leader's head.
func TestFenceHeadsIsOneRequest(t *testing.T) {
	t.Parallel()
	ns, nc := jsServerConn(t)
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	calls := watchAPI(t, ns.ClientURL())
	first := fenceAll(t, st, "node-a", make([]uint64, st.Partitions()))
	second := fenceAll(t, st, "node-b", first)
	calls.since(t, nc)
	heads, err := st.FenceHeads(ctx, allPartitions(st.Partitions()))
	require.NoError(t, err)
	assert.Equal(t, second, heads)
	assert.Equal(t, map[string]int{"$JS.API.DIRECT.GET": 1, "$JS.API.STREAM.INFO": 1}, calls.since(t, nc))
}

func jsServer(t *testing.T) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// jsServerConn is jsServer with a connection to it, closed when the test ends.
func jsServerConn(t *testing.T) (*natsserver.Server, *nats.Conn) {
	t.Helper()
	ns := jsServer(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return ns, nc
}

func fenceAll(t *testing.T, st *jetstore.Store, owner string, expect []uint64) []uint64 {
	t.Helper()
	claims := make([]ledger.FenceClaim, len(expect))
	for p := range claims {
		claims[p] = ledger.FenceClaim{Expect: expect[p], Fence: ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 1,
			Owner: owner, Partition: p, Partitions: len(expect), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	}
	pos, err := st.Fence(context.Background(), claims)
	require.NoError(t, err)
	return pos
}

func allPartitions(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// connectAll connects to each server, closing the connections when the test ends.
func connectAll(t *testing.T, servers []*natsserver.Server) []*nats.Conn {
	t.Helper()
	conns := make([]*nats.Conn, len(servers))
	for i, ns := range servers {
		nc, err := nats.Connect(ns.ClientURL())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		conns[i] = nc
	}
	return conns
}

// openElected opens the store on nc once the cluster has elected its meta leader (until then
// the stream cannot be created).
func openElected(t *testing.T, nc *nats.Conn, cfg jetstore.Config) *jetstore.Store {
	t.Helper()
	var st *jetstore.Store
	require.Eventually(t, func() bool {
		var err error
		st, err = jetstore.Open(context.Background(), nc, cfg)
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the stream was never created")
	// Created is not elected, and elected is not yet taking appends: the stream's leader answers
	// STREAM.INFO as soon as its raft group has a leader, and subscribes to the stream's subjects
	// a moment later, from the stream's own monitor (nats-server, setLeader); an append in
	// between finds no responders (TestReadNearWithoutALeader's first append did, after its head
	// had been read). A publish the leader must refuse (a last position the stream cannot have
	// yet) stores nothing, and its refusal comes only from a leader that takes publishes, on a
	// route that carries nc's.
	require.Eventually(t, func() bool { return leaderTakesAppends(st) }, 20*time.Second, 100*time.Millisecond,
		"the stream's leader never took appends")
	return st
}

// leaderTakesAppends is whether st's stream leader answers a publish on nc's route: it refuses
// one that expects a last position the stream does not have, and stores nothing.
func leaderTakesAppends(st *jetstore.Store) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := st.JetStream().Publish(ctx, jetstore.FenceSubject(0), nil, jetstream.WithExpectLastSequence(math.MaxInt64))
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// jsCluster starts three clustered JetStream servers and returns them once they answer.
func jsCluster(t *testing.T) []*natsserver.Server {
	t.Helper()
	servers, _ := jsClusterOpts(t)
	return servers
}

// jsClusterOpts is jsCluster, with each server's options (to start one again on its store).
func jsClusterOpts(t *testing.T) ([]*natsserver.Server, []*natsserver.Options) {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < 6; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		require.NoError(t, l.Close())
	}
	routes := natsserver.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", ports[3], ports[4], ports[5]))
	opts := make([]*natsserver.Options, 3)
	for i := range opts {
		opts[i] = &natsserver.Options{ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: natsserver.ClusterOpts{Name: "fenceheads", Host: "127.0.0.1", Port: ports[3+i]}, Routes: routes}
	}
	return startServers(t, opts), opts
}

// startServers starts a server with each of opts, stops them all when the test ends, and
// returns them once each answers.
func startServers(t *testing.T, opts []*natsserver.Options) []*natsserver.Server {
	t.Helper()
	servers := make([]*natsserver.Server, len(opts))
	for i, o := range opts {
		ns, err := natsserver.NewServer(o)
		require.NoError(t, err)
		ns.Start()
		servers[i] = ns
	}
	t.Cleanup(func() {
		for _, ns := range servers {
			ns.Shutdown()
		}
		for _, ns := range servers {
			ns.WaitForShutdown()
		}
	})
	for i, ns := range servers {
		// 30 s: three JetStream servers starting beside the package's other parallel clusters,
		// under -race on two loaded cores (10 s ran out once in CI).
		require.True(t, ns.ReadyForConnections(30*time.Second), "server %d (%s) never listened", i, ns.Name())
	}
	return servers
}

// replicatedPair starts a three-server cluster with a three-replica LEDGER and returns a store on
// the stream leader's server (writer) and one on a follower's (reader, with its connection).
func replicatedPair(t *testing.T) (writer, reader *jetstore.Store, readerConn *nats.Conn) {
	t.Helper()
	servers := jsCluster(t)
	ctx := context.Background()
	conns := connectAll(t, servers)
	st := openElected(t, conns[0], jetstore.Config{Replicas: 3, Partitions: 4})
	info, err := st.JetStream().Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	leader := info.CachedInfo().Cluster.Leader
	for i, ns := range servers {
		s, err := jetstore.Open(ctx, conns[i], jetstore.Config{})
		require.NoError(t, err)
		if ns.Name() == leader {
			writer = s
		} else {
			reader, readerConn = s, conns[i]
		}
	}
	require.NotNil(t, writer)
	return writer, reader, readerConn
}

// readEachWrite fences every partition n times through writer and, right after each write, reads
// the heads through reader, which must see it.
func readEachWrite(t *testing.T, writer, reader *jetstore.Store, n int) {
	t.Helper()
	heads := make([]uint64, 4)
	for i := 0; i < n; i++ {
		heads = fenceAll(t, writer, fmt.Sprintf("node-%d", i), heads)
		got, err := reader.FenceHeads(context.Background(), allPartitions(4))
		require.NoError(t, err)
		require.Equal(t, heads, got, "read %d, right after the write", i)
	}
}

// TestFenceHeadsReadsAfterEveryWriteOnAReplica: on a replicated stream any current replica
// answers a direct get, and one may not have applied the last write yet. The store reads the
// leader's head first and takes only an answer read at or past it: a fence read from a
// follower's server right after each fence write, acknowledged by the leader, sees that write.
func TestFenceHeadsReadsAfterEveryWriteOnAReplica(t *testing.T) {
	t.Parallel()
	writer, reader, readerConn := replicatedPair(t)
	calls := watchAPI(t, readerConn.ConnectedUrl())
	readEachWrite(t, writer, reader, 200)
	n := calls.since(t, readerConn)
	assert.Equal(t, 200, n["$JS.API.STREAM.INFO"], "the leader's head, once a read: %v", n)
	assert.GreaterOrEqual(t, n["$JS.API.DIRECT.GET"], 200, "%v", n)
}

// TestFenceHeadsIgnoresAMirrorsAnswer: a mirror created with mirror_direct answers the stream's
// direct gets too, from its own copy. Here it copies partition 0's ownership records only: its
// answer lacks the others (or, asked for those alone, is empty). The store takes no answer from
// another stream, and reads an empty one from the leader.
func TestFenceHeadsIgnoresAMirrorsAnswer(t *testing.T) {
	t.Parallel()
	ns, nc := jsServerConn(t)
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{Partitions: 4})
	require.NoError(t, err)
	heads := fenceAll(t, st, "node-a", make([]uint64, 4))
	mirror, err := st.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "LEDGER_MIRROR", MirrorDirect: true,
		Mirror: &jetstream.StreamSource{Name: jetstore.StreamName, FilterSubject: jetstore.FenceSubject(0)}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := mirror.Info(ctx)
		return err == nil && info.State.Msgs == 1
	}, 20*time.Second, 10*time.Millisecond, "the mirror never copied partition 0's record")
	calls := watchAPI(t, ns.ClientURL())
	const reads = 30
	for i := 0; i < reads; i++ {
		got, err := st.FenceHeads(ctx, allPartitions(4))
		require.NoError(t, err)
		require.Equal(t, heads, got, "read %d", i)
		got, err = st.FenceHeads(ctx, []int{1, 2, 3})
		require.NoError(t, err)
		require.Equal(t, heads[1:], got, "read %d", i)
	}
	n := calls.since(t, nc)
	assert.Greater(t, n["$JS.API.DIRECT.GET"], 2*reads, "the mirror answered some, and was asked again: %v", n)
	assert.Positive(t, n["$JS.API.STREAM.MSG.GET"], "empty answers were read from the leader: %v", n)
}

// BenchmarkFenceHeads: what a round with rejections adds, on one server, by how many partitions
// its rejections are in (BENCHMARKS.md has the one-partition-at-a-time reads it replaced).
func BenchmarkFenceHeads(b *testing.B) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: b.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(b, err)
	ns.Start()
	require.True(b, ns.ReadyForConnections(10*time.Second))
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(b, err)
	defer nc.Close()
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(b, err)
	claims := make([]ledger.FenceClaim, st.Partitions())
	for p := range claims {
		claims[p] = ledger.FenceClaim{Fence: ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 1, Owner: "bench",
			Partition: p, Partitions: len(claims), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	}
	_, err = st.Fence(ctx, claims)
	require.NoError(b, err)
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("FenceHeads/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := st.FenceHeads(ctx, allPartitions(n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFenceHeadsReadsAfterEveryWriteOnAStreamScaledUp: a store opened while LEDGER had one
// replica, and scaled to three while it runs (an operator's `nats stream edit --replicas 3`),
// must not keep trusting the one replica it cached: every fence read asks the leader's head
// first, so it sees every write acknowledged before it whichever replica answers. (The stale
// answer itself could not be provoked here: in 200 reads after a scale-up no follower answered
// behind the leader, so the test counts the head reads.)
func TestFenceHeadsReadsAfterEveryWriteOnAStreamScaledUp(t *testing.T) {
	t.Parallel()
	servers := jsCluster(t)
	ctx := context.Background()
	conns := connectAll(t, servers)
	first := openElected(t, conns[0], jetstore.Config{Replicas: 1, Partitions: 4})
	stores := make([]*jetstore.Store, len(servers))
	for i := range servers {
		s, err := jetstore.Open(ctx, conns[i], jetstore.Config{})
		require.NoError(t, err)
		stores[i] = s // every store caches one replica
	}
	js := first.JetStream()
	st, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.Replicas = 3
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	var leader string
	require.Eventually(t, func() bool {
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		leader = info.Cluster.Leader
		return true
	}, 20*time.Second, 20*time.Millisecond, "the stream never had three current replicas")
	var writer, reader *jetstore.Store
	for i, ns := range servers {
		if ns.Name() == leader {
			writer = stores[i]
		} else if reader == nil {
			reader = stores[i]
		}
	}
	require.NotNil(t, writer)
	var readerConn *nats.Conn
	for i := range stores {
		if stores[i] == reader {
			readerConn = conns[i]
		}
	}
	calls := watchAPI(t, readerConn.ConnectedUrl())
	readEachWrite(t, writer, reader, 200)
	n := calls.since(t, readerConn)
	assert.Equal(t, 200, n["$JS.API.STREAM.INFO"], "the leader's head, once a read, though the store cached one replica: %v", n)
}
