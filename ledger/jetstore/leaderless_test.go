package jetstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// cutProxy forwards TCP connections to target until Cut, which closes them and refuses more:
// a route between two servers that the network cuts.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { p.Cut(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			p.mu.Lock()
			if err != nil || p.cut {
				p.mu.Unlock()
				c.Close()
				if d != nil {
					d.Close()
				}
				continue
			}
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); d.Close() }()
			go func() { _, _ = io.Copy(c, d); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) url() string { return "nats://" + p.ln.Addr().String() }

// Cut closes the proxied connections and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
}

// proxiedCluster starts three servers whose routes all go through proxies, proxies[i][j]
// carrying i's routes to j (none where i == j); no server advertises a route address of its
// own, so no route bypasses them.
func proxiedCluster(t *testing.T) ([]*natsserver.Server, [][]*cutProxy) {
	t.Helper()
	cports := make([]int, 3)
	for i := range cports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		cports[i] = l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
	}
	proxies := make([][]*cutProxy, 3)
	opts := make([]*natsserver.Options, 3)
	for i := range opts {
		proxies[i] = make([]*cutProxy, 3)
		var routes string
		for j := range cports {
			if j != i {
				proxies[i][j] = newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", cports[j]))
				routes += proxies[i][j].url() + ","
			}
		}
		opts[i] = &natsserver.Options{ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: natsserver.ClusterOpts{Name: "leaderless", Host: "127.0.0.1", Port: cports[i], Advertise: "127.0.0.1:1"},
			Routes:  natsserver.RoutesFromStr(routes[:len(routes)-1])}
	}
	return startServers(t, opts), proxies
}

// TestHeadsAreNotReadFromALeaderlessReplica: in a cluster, a replica that has no leader for a
// stream (an election, or the other replicas out of reach) answers STREAM.INFO from its own
// store (nats-server's jsStreamInfoRequest), which may lack writes the leader acknowledged. A
// head read there ends a read early without a sign: the rejection log's (a new owner's load
// would miss a rejection the old owner answered; writer/rejections.go, finishRejections) and the
// LEDGER's (the writer's load, the floor of a fence read). Here the network cuts a follower of
// both streams off; the other two go on writing, and the follower, on its own, answers stream
// info naming no leader once it has run nats-server's 10 s. A head read there must fail, not come
// back short.
func TestHeadsAreNotReadFromALeaderlessReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers, proxies := proxiedCluster(t)
	conns := connectAll(t, servers)
	st := openElected(t, conns[0], jetstore.Config{Replicas: 3, Partitions: 4})
	log, err := jetstore.OpenRejections(ctx, st, 3)
	require.NoError(t, err)

	// The replica: a server that leads neither stream (two streams, three servers).
	leaders := map[string]bool{}
	for _, name := range []string{jetstore.StreamName, jetstore.RejectionStream} {
		s, err := st.JetStream().Stream(ctx, name)
		require.NoError(t, err)
		leaders[s.CachedInfo().Cluster.Leader] = true
	}
	lag := -1
	for i, ns := range servers {
		if !leaders[ns.Name()] {
			lag = i
		}
	}
	require.GreaterOrEqual(t, lag, 0)
	replica, err := jetstore.Open(ctx, conns[lag], jetstore.Config{})
	require.NoError(t, err)
	replicaLog, err := jetstore.OpenRejections(ctx, replica, 3)
	require.NoError(t, err)
	st, err = jetstore.Open(ctx, conns[(lag+1)%3], jetstore.Config{})
	require.NoError(t, err)
	log, err = jetstore.OpenRejections(ctx, st, 3)
	require.NoError(t, err)

	reject := func(id string) uint64 {
		pos, err := log.AppendRejections(ctx, []ledger.Rejection{{CommandID: id, AccountID: "a", BodyHash: "h",
			Err: ledger.Reject(ledger.CodeInsufficientCredits, "no")}})
		require.NoError(t, err)
		return pos[len(pos)-1].Position
	}
	read := reject("c1") // a load read the log up to here (a snapshot's position)
	heads := fenceAll(t, st, "node-a", make([]uint64, 4))
	for i := range proxies {
		if i != lag {
			proxies[i][lag].Cut()
			proxies[lag][i].Cut()
		}
	}
	reject("c2") // acknowledged by the two others
	fenceAll(t, st, "node-b", heads)
	head, err := st.Head(ctx)
	require.NoError(t, err)

	require.Eventually(t, func() bool { // the cut-off replica answers stream info on its own
		m, err := conns[lag].Request("$JS.API.STREAM.INFO."+jetstore.RejectionStream, nil, time.Second)
		if err != nil {
			return false
		}
		var resp struct {
			jetstream.StreamInfo
			Error *jetstream.APIError `json:"error"`
		}
		return json.Unmarshal(m.Data, &resp) == nil && resp.Error == nil && resp.Cluster != nil && resp.Cluster.Leader == ""
	}, 30*time.Second, 200*time.Millisecond, "the leaderless replica never answered stream info")

	var seen []string
	_, err = replicaLog.ReadRejections(ctx, read+1, func(r ledger.Rejection, _ ledger.RejectionAt) { seen = append(seen, r.CommandID) }, nil)
	if err == nil {
		assert.Contains(t, seen, "c2", "the rejection log read ended before an acknowledged rejection")
	}
	got, err := replica.Head(ctx)
	if err == nil {
		assert.GreaterOrEqual(t, got, head, "the stream's head read short of an acknowledged ownership record")
	}
}
