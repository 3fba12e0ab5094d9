package productiontest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
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

// A node that restarts loads its partitions from their snapshots plus the events after them, not
// the whole stream: every partition was snapshotted when it was handed over (to the nodes that
// joined, and by the node's own graceful stop). License ids bought while one node owned every
// partition were never reserved in LEDGER_IDS; the restarted node still refuses them for its own
// accounts, from the id lists of the partitions it does not hold.
func TestRestartedNodeLoadsPartitionSnapshots(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	a := start(t, sharedNode(t, url, "a", nil))
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
		assert.Greater(t, l.From, beforeSplit, "the events before the first hand-over are in the snapshots")
		assert.Less(t, uint64(l.RecordsRead), l.Head, "not the whole stream")
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
