package productiontest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/server"
)

// logLines collects a node's log lines (the ledger's and its embedded NATS server's warnings
// and errors), for a test to look for messages no node may log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(bytes.TrimSpace(p)))
	return len(p), nil
}

func (l *logLines) matching(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		for _, s := range subs {
			if strings.Contains(strings.ToLower(line), s) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// Issue 11: with the documented cluster command every node signed checkpoints, each with its own
// key, and the losers of each race logged "wrong last sequence". Three embedded nodes, each with
// its own data directory and so its own generated checkpoint key, take commands through all
// three, then checkpoint requests until every node has answered some (a request goes to any
// member of the endpoint's queue group, so the test counts each instance's answers in
// $SRV.STATS). Only the owner of partition 0 signs: one instance answers with checkpoints of
// the head signed by its key, the other two answer every request unavailable, every checkpoint
// stored was signed by that key (one per round: nothing else was stored), and no node logs a
// lost race for the checkpoint stream.
func TestClusterHasOneCheckpointSigner(t *testing.T) {
	t.Parallel()
	logs := map[string]*logLines{}
	var logsMu sync.Mutex
	nodes, urls := startCluster(t, func(cfg *server.Config) {
		l := &logLines{}
		logsMu.Lock()
		logs[cfg.ServerName] = l
		logsMu.Unlock()
		cfg.Log = zerolog.New(l).Level(zerolog.InfoLevel).With().Str("node", cfg.ServerName).Logger()
		// On demand only, so that each round of requests stores exactly one checkpoint.
		cfg.Checkpoints = server.CheckpointConfig{Every: -1, Interval: -1}
	})
	servers := make([]*server.Server, len(nodes))
	vkeys := make([]string, len(nodes))
	pubs := make([]ed25519.PublicKey, len(nodes))
	conns := make([]*nats.Conn, len(nodes))
	caFile := nodes[0].cfg.TLS.CA
	for i, n := range nodes {
		servers[i] = n.server()
		b, err := os.ReadFile(audit.VerifierKeyFile(filepath.Join(n.cfg.DataDir, audit.DefaultKeyFileName)))
		require.NoError(t, err, n.cfg.ServerName)
		vkeys[i] = strings.TrimSpace(string(b))
		_, pubs[i], err = audit.ParseVerifierKey(vkeys[i])
		require.NoError(t, err)
		conns[i] = dialCluster(t, urls[i:i+1], 0, caFile) // node i alone
		waitServing(t, conns[i])
	}
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(vkeys))), 3, "each node has its own key")
	waitSplit(t, servers...)
	signer := ownerOf0(t, servers)
	t.Logf("%s holds partition 0", nodes[signer].cfg.ServerName)

	const rounds = 3
	heads := map[uint64]bool{} // the sizes signed: one stored checkpoint each
	for r := 0; r < rounds; r++ {
		for i, nc := range conns { // commands through every node
			acct := fmt.Sprintf("sig-r%d-n%d", r, i)
			_, err := client(t, nc).PurchaseLicense(ctxT(t), purchase(acct+"-buy", acct, acct+"-L", "10"))
			require.NoError(t, err, "through %s", nodes[i].cfg.ServerName)
		}
		before := checkpointStats(t, conns[0])
		var signed, refused int
		for k := 0; ; k++ {
			if k%3 == 0 && k > 0 { // until every instance answered one of this round's requests
				now, all := checkpointStats(t, conns[0]), true
				for id, st := range now {
					all = all && st.NumRequests > before[id].NumRequests
				}
				if all {
					break
				}
				require.Less(t, k, 300, "round %d: some node never got a checkpoint request", r)
			}
			what := fmt.Sprintf("round %d, request %d through %s", r, k, nodes[k%3].cfg.ServerName)
			head := streamHead(t, conns[0]) // a node's ownership record (a lease re-taken under load) may land meanwhile
			msg, err := conns[k%3].Request(audit.CheckpointRequestSubject, nil, 15*time.Second)
			require.NoError(t, err, what)
			var rej struct {
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if json.Unmarshal(msg.Data, &rej) == nil && rej.Error != nil {
				assert.Equal(t, "unavailable", rej.Error.Code, what)
				refused++
				continue
			}
			cp, err := audit.ParseLogCheckpoint(msg.Data, []ed25519.PublicKey{pubs[signer]})
			if !assert.NoError(t, err, "%s: not a checkpoint by %s: %q", what, nodes[signer].cfg.ServerName, msg.Data) {
				continue
			}
			assert.GreaterOrEqual(t, cp.Size, head, "%s: a checkpoint of the head", what)
			assert.LessOrEqual(t, cp.Size, streamHead(t, conns[0]), "%s: a checkpoint of the head", what)
			heads[cp.Size] = true
			signed++
		}
		t.Logf("round %d: %d checkpoints, %d refusals", r, signed, refused)
		// Exactly one instance answered with checkpoints; the other two refused every request.
		var signers []string
		for id, st := range checkpointStats(t, conns[0]) {
			reqs, errs := st.NumRequests-before[id].NumRequests, st.NumErrors-before[id].NumErrors
			if reqs > errs {
				signers = append(signers, id)
			}
		}
		assert.Len(t, signers, 1, "round %d: instances that answered with a checkpoint", r)
	}
	require.Equal(t, signer, ownerOf0(t, servers), "partition 0 stayed where it was")

	src, err := audit.NewSource(ctxT(t), conns[0])
	require.NoError(t, err)
	stored, err := src.Checkpoints(ctxT(t))
	require.NoError(t, err)
	// One per round, and one more for a head an ownership record moved within a round (a lease
	// re-taken under load: a fresh-clone CI run stored 4 for 3 rounds, round 0 signing two heads).
	require.Len(t, stored, len(heads), "one checkpoint per head signed, all by the signer")
	require.GreaterOrEqual(t, len(heads), rounds)
	for _, sc := range stored {
		require.NoError(t, sc.Err, "checkpoint %d", sc.Seq)
		require.NotNil(t, sc.Log, "checkpoint %d", sc.Seq)
		assert.Equal(t, vkeys[signer], sc.VerifierKey, "checkpoint %d stored by the signer", sc.Seq)
		for i, pub := range pubs {
			_, err := audit.ParseLogCheckpoint(sc.Log.Note, []ed25519.PublicKey{pub})
			assert.Equal(t, i == signer, err == nil, "checkpoint %d verifies under %s's key: %v", sc.Seq, nodes[i].cfg.ServerName, err)
		}
	}
	require.Len(t, logs, len(nodes))
	for name, l := range logs {
		assert.Empty(t, l.matching("wrong last sequence", "another checkpoint was stored", "keeps moving under this publisher", "store checkpoint"),
			"%s logged a lost race for the checkpoint stream", name)
	}
}

// checkpointStats is the checkpoint endpoint's $SRV.STATS of every ledger instance, by id.
func checkpointStats(t *testing.T, nc *nats.Conn) map[string]micro.EndpointStats {
	t.Helper()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	subj, err := micro.ControlSubject(micro.StatsVerb, commands.ServiceName, "")
	require.NoError(t, err)
	require.NoError(t, nc.PublishRequest(subj, inbox, nil))
	out := map[string]micro.EndpointStats{}
	for len(out) < 3 {
		m, err := sub.NextMsg(waitFor)
		require.NoError(t, err, "$SRV.STATS answers: %d of 3", len(out))
		var st micro.Stats
		require.NoError(t, json.Unmarshal(m.Data, &st))
		for _, e := range st.Endpoints {
			if e.Subject == audit.CheckpointRequestSubject {
				out[st.ID] = *e
			}
		}
		require.Contains(t, out, st.ID, "instance %s has no checkpoint endpoint", st.ID)
	}
	return out
}

// ownerOf0 is the index of the one server that holds partition 0.
func ownerOf0(t *testing.T, servers []*server.Server) int {
	t.Helper()
	owner := -1
	for i, s := range servers {
		if slices.Contains(s.Partitions(), 0) {
			require.Equal(t, -1, owner, "partition 0 held twice")
			owner = i
		}
	}
	require.NotEqual(t, -1, owner, "nobody holds partition 0")
	return owner
}
