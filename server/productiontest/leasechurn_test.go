package productiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
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
	"github.com/creditledger/creditledger/server"
)

// Issue 12, lease churn: the server leading the lease bucket's stream dies, and its election
// outlasts the lease TTL, so every lease lapses although no ledger node changed. Two ledger
// nodes share a three-server JetStream cluster (what --nats-url points at); the lease bucket is
// led by the third server, every other stream by another one, and the third is killed while
// commands go to accounts of both nodes. The nodes keep answering on their fences while the
// lease clock has lapsed (an append, and a rejection under its fence read), re-acquire their own
// partitions afterwards, and keep them as they were: no new ownership record, no writer loaded
// (on the previous build every partition was fenced and loaded again, and commands waited
// meanwhile).
func TestLeaseBucketLeaderLossKeepsPartitions(t *testing.T) {
	t.Parallel()
	urls, names, crash := jetStreamCluster(t)
	replicated := func(cfg server.Config) server.Config { cfg.Replicas = 3; return cfg }
	a := start(t, replicated(sharedNode(t, urls[0], "a", nil)))
	b := start(t, replicated(sharedNode(t, urls[1], "b", nil)))
	waitSplit(t, a, b)
	nc := connectTo(t, urls[0])
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	moveLeaders(t, js, names[2], names[0])

	nodes := []*server.Server{a, b}
	cl := client(t, nc)
	accounts := []string{accountOn(t, a, "churn-a"), accountOn(t, b, "churn-b")}
	for _, acct := range accounts {
		setupRetry(t, func() error {
			_, err := cl.PurchaseLicense(ctxT(t), purchase(acct+"-p", acct, acct+"-L", "1000"))
			return err
		})
		setupRetry(t, func() error {
			_, err := cl.ActivateLicense(ctxT(t), activate(acct+"-a", acct, acct+"-L"))
			return err
		})
	}
	require.Eventually(t, func() bool { return a.Settled() && b.Settled() }, 3*waitFor, pollTick, "a takeover never ended")
	held := [][]int{a.Partitions(), b.Partitions()}
	fences := map[int]uint64{}
	for p := 0; p < a.PartitionCount(); p++ {
		fences[p] = fenceSeq(t, js, p)
	}
	stats := []server.PartitionStats{a.PartitionStats(), b.PartitionStats()}
	seq := 0
	send := func(what string) {
		t.Helper()
		for _, acct := range accounts {
			seq++
			_, err := cl.AllocateCredits(ctxT(t), allocate(fmt.Sprintf("churn-%d", seq), acct, "1"))
			require.NoError(t, err, "%s: a command on %s", what, acct)
		}
	}
	send("before")

	crash()
	killed := time.Now()

	// During: the lease clock of both nodes lapses (the bucket has no leader); commands are
	// accepted all the same, on the fences.
	lapsed := func() bool {
		for i, n := range nodes {
			if n.LeaseValid(held[i][0]) {
				return false
			}
		}
		return true
	}
	require.Eventually(t, lapsed, waitFor, pollTick, "the leases never lapsed")
	// All four at once: the window between the lapse and the bucket's new leader is what is left
	// of a 4-9 s election, and four commands one after another outlasted it on a loaded machine.
	var during sync.WaitGroup
	accepted, rejected := make([]error, len(accounts)), make([]error, len(accounts))
	for i, acct := range accounts {
		seq++
		id := fmt.Sprintf("churn-%d", seq)
		during.Add(2)
		go func() {
			defer during.Done()
			_, accepted[i] = cl.AllocateCredits(ctxT(t), allocate(id, acct, "1"))
		}()
		go func() { // a rejection is answered too, under its fence read
			defer during.Done()
			_, rejected[i] = cl.AllocateCredits(ctxT(t), allocate(acct+"-over", acct, "5000"))
		}()
	}
	during.Wait()
	for i, acct := range accounts {
		require.NoError(t, accepted[i], "during the outage: a command on %s", acct)
		require.Equal(t, ledger.CodeInsufficientCredits, code(rejected[i]), "during the outage: %v", rejected[i])
	}
	require.True(t, lapsed(), "the lease bucket was back before the commands were answered (%s after the kill)", time.Since(killed))
	t.Logf("commands accepted on the fences %s after the kill", time.Since(killed).Round(time.Millisecond))

	// After: every partition is held again by its node, by the lease clock, and its writer
	// decides it.
	require.Eventually(t, func() bool {
		for i, n := range nodes {
			if !n.Settled() {
				return false
			}
			for _, p := range held[i] {
				if !n.LeaseValid(p) {
					return false
				}
			}
		}
		return true
	}, 3*waitFor, pollTick, "the nodes never held their partitions again")
	t.Logf("leases valid again %s after the kill", time.Since(killed).Round(time.Millisecond))
	send("after the outage")

	for i, n := range nodes {
		assert.Equal(t, held[i], n.Partitions(), "node %d holds the partitions it held", i)
		now := n.PartitionStats()
		assert.Equal(t, stats[i].Loads, now.Loads, "node %d loaded no writer", i)
		assert.Equal(t, stats[i].Fenced, now.Fenced, "node %d wrote no ownership record", i)
		assert.Positive(t, now.Kept-stats[i].Kept, "node %d kept re-acquired partitions", i)
		t.Logf("node %d: %d partitions kept across the lapse", i, now.Kept-stats[i].Kept)
	}
	for p, seq := range fences {
		assert.Equal(t, seq, fenceSeq(t, js, p), "partition %d's ownership record", p)
	}
}

// jetStreamCluster starts three NATS servers with JetStream in one cluster and waits until it
// places three-replica streams. The first two run in this process; the third runs in a child
// process (TestNATSServerProcess), which the returned function kills as a crash does: SIGKILL,
// no hand-over (Server.Shutdown steps its raft leaders down first, which no crash does). It
// returns the client URLs and the servers' names.
func jetStreamCluster(t *testing.T) (urls, names []string, crash func()) {
	t.Helper()
	ports := freePorts(t, 6)
	var routes []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		names = append(names, fmt.Sprintf("s%d", i+1))
	}
	spec := func(i int) natsProcessSpec {
		return natsProcessSpec{Name: names[i], Port: ports[i], ClusterPort: ports[3+i], Routes: routes, StoreDir: t.TempDir()}
	}
	for i := 0; i < 2; i++ {
		ns, err := natsserver.NewServer(spec(i).options())
		require.NoError(t, err)
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		require.True(t, ns.ReadyForConnections(waitFor))
	}
	raw, err := json.Marshal(spec(2))
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNATSServerProcess$")
	cmd.Env = append(os.Environ(), natsProcessEnv+"="+string(raw))
	require.NoError(t, cmd.Start())
	var once sync.Once
	crash = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(crash)
	nc, err := nats.Connect(urls[0])
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Replicas: 3, Storage: jetstream.MemoryStorage})
		return err == nil
	}, 6*waitFor, 100*time.Millisecond, "the cluster never placed a three-replica stream")
	require.NoError(t, js.DeleteStream(ctxT(t), "PROBE"))
	return urls, names, crash
}

// natsProcessEnv holds the spec of the NATS server this test binary runs as a child process.
const natsProcessEnv = "LEDGER_TEST_NATS_PROCESS"

// natsProcessSpec is one clustered NATS server with JetStream on fixed loopback ports.
type natsProcessSpec struct {
	Name        string
	Port        int
	ClusterPort int
	Routes      []string
	StoreDir    string
}

func (s natsProcessSpec) options() *natsserver.Options {
	var routes []*url.URL
	for _, r := range s.Routes {
		u, err := url.Parse(r)
		if err == nil {
			routes = append(routes, u)
		}
	}
	return &natsserver.Options{
		ServerName: s.Name, Host: "127.0.0.1", Port: s.Port, JetStream: true, StoreDir: s.StoreDir,
		Cluster: natsserver.ClusterOpts{Name: "lease-churn", Host: "127.0.0.1", Port: s.ClusterPort}, Routes: routes,
		NoLog: true, NoSigs: true,
	}
}

// TestNATSServerProcess is not a test: run by jetStreamCluster as a child process (natsProcessEnv
// set), it serves one NATS server until the process is killed.
func TestNATSServerProcess(t *testing.T) {
	raw := os.Getenv(natsProcessEnv)
	if raw == "" {
		t.Skip("the NATS server child process of jetStreamCluster")
	}
	var spec natsProcessSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	ns, err := natsserver.NewServer(spec.options())
	require.NoError(t, err)
	ns.Start()
	ns.WaitForShutdown()
}

// moveLeaders makes server victim lead the lease bucket's stream and server other lead every
// stream victim led besides.
func moveLeaders(t *testing.T, js jetstream.JetStream, victim, other string) {
	t.Helper()
	names := js.StreamNames(ctxT(t))
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	require.NoError(t, names.Err())
	for _, st := range streams {
		want := other
		if st == "KV_"+jetstore.LeaseBucket {
			want = victim
		}
		require.Eventually(t, func() bool {
			leader := streamLeader(js, st)
			if leader == want || (want == other && leader != "" && leader != victim) {
				return true
			}
			body, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": want}})
			_, _ = js.Conn().Request("$JS.API.STREAM.LEADER.STEPDOWN."+st, body, 2*time.Second)
			return false
		}, 3*waitFor, 200*time.Millisecond, "stream %s never led by %s", st, want)
	}
}

func streamLeader(js jetstream.JetStream, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return ""
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// fenceSeq is the stream sequence of partition p's last ownership record.
func fenceSeq(t *testing.T, js jetstream.JetStream, p int) uint64 {
	t.Helper()
	st, err := js.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(ctxT(t), jetstore.FenceSubject(p))
	require.NoError(t, err)
	_, err = ledger.DecodeFence(m.Data)
	require.NoError(t, err)
	return m.Sequence
}
