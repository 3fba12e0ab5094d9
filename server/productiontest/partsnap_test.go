package productiontest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// logBuffer collects a node's log lines (JSON), safe for the node's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// loadLine is a writer's "writer loaded" line.
type loadLine struct {
	From        uint64 `json:"from"`
	Head        uint64 `json:"head"`
	RecordsRead int    `json:"records_read"`
	Partitions  int    `json:"partitions"`
}

// loads returns the "writer loaded" lines logged so far, oldest first.
func (l *logBuffer) loads(t *testing.T) []loadLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loadLine
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Message == "writer loaded" {
			var line loadLine
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
			out = append(out, line)
		}
	}
	return out
}

// warnings returns the warn and error lines logged so far.
func (l *logBuffer) warnings() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"level":"warn"`)) || bytes.Contains(sc.Bytes(), []byte(`"level":"error"`)) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// A node that restarts loads its partitions from their snapshots plus the events after them, not
// the whole stream: every partition was snapshotted when it was handed over (to the nodes that
// joined, and by the node's own graceful stop). License ids bought while one node owned every
// partition were reserved in LEDGER_IDS all the same (the store keeps partitions apart: a node
// reads only its own); the restarted node refuses them for its own accounts.
func TestRestartedNodeLoadsPartitionSnapshots(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	aLogs := &logBuffer{}
	aCfg := sharedNode(t, url, "a", nil)
	aCfg.Log = zerolog.New(aLogs).With().Str("node", "a").Logger()
	a := start(t, aCfg)
	require.Eventually(t, func() bool { return len(a.Partitions()) == a.PartitionCount() }, waitFor, pollTick)
	nc := connectTo(t, url)
	cl := client(t, nc)
	holders := fundedAccounts(t, cl, "alone", 8) // licenses "<account>-L", never claimed
	beforeSplit := streamHead(t, nc)
	b := start(t, sharedNode(t, url, "b", nil))
	c := start(t, sharedNode(t, url, "c", nil))
	waitSplit(t, a, b, c)
	fundedAccounts(t, cl, "split", 6)

	a.Shutdown(context.Background()) // hands its partitions over, each with its snapshot
	waitSplit(t, b, c)
	// Every partition has a snapshot: saved when a handed it over, or (a hand-over whose drain
	// timed out under load lets the lease lapse instead) by its next owner right after its load.
	obs := snapshotBucket(t, nc)
	require.Eventually(t, func() bool {
		for p := range a.PartitionCount() {
			if _, err := obs.GetInfo(ctxT(t), fmt.Sprintf("writer-v5-p%d-ids", p)); err != nil {
				return false
			}
		}
		return true
	}, waitFor, pollTick, "every partition snapshotted; a logged:\n%s", aLogs.warnings())
	logs := &logBuffer{}
	cfg := sharedNode(t, url, "a", nil)
	cfg.Log = zerolog.New(logs).With().Str("node", "a").Logger()
	a2 := start(t, cfg)
	waitSplit(t, a2, b, c)
	require.Eventually(t, func() bool {
		ls := logs.loads(t)
		return len(ls) > 0 && ls[len(ls)-1].Partitions == len(a2.Partitions())
	}, waitFor, pollTick, "the restarted node loads the partitions it holds")
	head := streamHead(t, nc)
	for _, l := range logs.loads(t) {
		t.Logf("restarted node loaded %d partitions: from %d, %d records read, head %d (stream head %d)", l.Partitions, l.From, l.RecordsRead, l.Head, head)
		if l.Partitions == 0 {
			assert.Zero(t, l.RecordsRead, "holding no partition, it reads nothing")
			continue
		}
		assert.Greater(t, l.From, beforeSplit, "the events before the first hand-over are in the snapshots")
		assert.Less(t, uint64(l.RecordsRead), l.Head, "not the whole stream")
	}

	if t.Failed() {
		t.Log(logs.warnings())
	}
	var holder string
	for _, h := range holders {
		if !holds(a2, h) {
			holder = h
			break
		}
	}
	require.NotEmpty(t, holder, "a license holder in another node's partition")
	thief := accountOn(t, a2, "thief")
	require.NotEqual(t, ledger.PartitionOf(holder, a2.PartitionCount()), ledger.PartitionOf(thief, a2.PartitionCount()))
	_, err := cl.PurchaseLicense(ctxT(t), purchase("steal", thief, holder+"-L", "1"))
	assert.Equal(t, ledger.CodeAlreadyExists, code(err), "a license held in another partition stays taken")
}

// savedAt reports whether the node logged a snapshot save at or above position.
func (l *logBuffer) savedAt(position uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			Message  string `json:"message"`
			Position uint64 `json:"position"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Message == "snapshot saved" && m.Position >= position {
			return true
		}
	}
	return false
}

// snapshotBucket opens the shared snapshot bucket.
func snapshotBucket(t *testing.T, nc *nats.Conn) jetstream.ObjectStore {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctxT(t), jetstore.SnapshotBucket)
	require.NoError(t, err)
	return obs
}

// A node killed with no hand-over: the survivors load its partitions from the snapshots their
// owners saved every SnapshotEvery events (here 20), plus the events after them.
func TestTakeoverLoadsPartitionSnapshots(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	names := []string{"a", "b", "c"}
	logs := make([]*logBuffer, len(names))
	nodes := make([]*server.Server, len(names))
	for i, name := range names {
		logs[i] = &logBuffer{}
		cfg := sharedNode(t, url, name, nil)
		cfg.Log = zerolog.New(logs[i]).With().Str("node", name).Logger()
		cfg.SnapshotEvery = 20
		nodes[i] = start(t, cfg)
	}
	waitSplit(t, nodes...)
	nc := connectTo(t, url)
	cl := client(t, nc)
	fundedAccounts(t, cl, "tk", 12)
	const funded = 20 // SnapshotEvery: every node appends past it, so every node snapshots
	require.Greater(t, streamHead(t, nc), uint64(funded))
	for i, n := range nodes {
		fundedAccounts(t, cl, accountOn(t, n, "tk-"+names[i]), 1)
	}
	for i := range nodes {
		require.Eventually(t, func() bool { return logs[i].savedAt(funded) }, waitFor, pollTick, "node %s snapshots its partitions", names[i])
	}
	loadsBefore := []int{len(logs[0].loads(t)), len(logs[2].loads(t))}

	nodes[1].Kill()
	waitSplit(t, nodes[0], nodes[2])
	head := streamHead(t, nc)
	for j, i := range []int{0, 2} {
		require.Eventually(t, func() bool {
			ls := logs[i].loads(t)
			return len(ls) > loadsBefore[j] && ls[len(ls)-1].Partitions == len(nodes[i].Partitions())
		}, waitFor, pollTick, "node %s loads the partitions it took over", names[i])
		ls := logs[i].loads(t)
		l := ls[len(ls)-1]
		t.Logf("node %s took over: %d partitions from %d, %d records read (stream head %d)", names[i], l.Partitions, l.From, l.RecordsRead, head)
		assert.Greater(t, l.From, uint64(funded), "from the snapshots, not the stream's start")
		// Positions From..Head hold the events read and the ownership records the takeover wrote
		// (not events: not counted as records read).
		assert.LessOrEqual(t, uint64(l.RecordsRead), l.Head-l.From+1, "only the stream after the oldest snapshot is read")
		assert.Less(t, uint64(l.RecordsRead), head-funded, "not the stream before the snapshots")
	}
	_, err := cl.PurchaseLicense(ctxT(t), purchase("after-kill", accountOn(t, nodes[0], "tk-after"), "tk-L-after", "1"))
	require.NoError(t, err)
}
