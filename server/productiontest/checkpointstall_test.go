package productiontest

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/server"
)

// What the publisher logs when it finds the history broken, and when it follows the stream again.
var (
	publisherFindings = []string{"fails verification", "was altered", "no checkpoints will be signed", "no further checkpoints"}
	publisherFollows  = "checkpoint publisher follows the stream again"
)

// checkpointNode is a proxiedNode that signs checkpoints on demand only, logging to logs.
func checkpointNode(t *testing.T, credits string) (proxiedNode, *logLines, ed25519.PublicKey) {
	t.Helper()
	logs := &logLines{}
	pn := startProxiedNode(t, credits, func(cfg *server.Config) {
		cfg.Checkpoints = server.CheckpointConfig{Every: -1, Interval: -1}
		cfg.Log = zerolog.New(logs).Level(zerolog.InfoLevel)
	})
	pub, err := audit.ReadPublicKey(audit.PublicKeyFile(filepath.Join(pn.cfg.DataDir, audit.DefaultKeyFileName)))
	require.NoError(t, err)
	return pn, logs, pub
}

// checkpointWithin asks for a checkpoint until one signed by pub is answered, for at most wait:
// a node that has not taken partition 0 back after a fault answers unavailable meanwhile. An
// answer that the history fails verification ends the test at once.
func checkpointWithin(t *testing.T, nc *nats.Conn, pub ed25519.PublicKey, wait time.Duration) audit.LogCheckpoint {
	t.Helper()
	deadline, last := time.Now().Add(wait), "none"
	for time.Until(deadline) > 0 {
		msg, err := nc.Request(audit.CheckpointRequestSubject, nil, time.Until(deadline))
		if err != nil {
			last = err.Error()
		} else if cp, perr := audit.ParseLogCheckpoint(msg.Data, []ed25519.PublicKey{pub}); perr == nil {
			return cp
		} else {
			last = string(msg.Data)
			require.NotContains(t, last, `"code":"internal"`, "the publisher found the history broken")
		}
		select {
		case <-time.After(pollTick):
		case <-ctxT(t).Done():
		}
	}
	t.Fatalf("no checkpoint within %s; the last answer: %s", wait, last)
	return audit.LogCheckpoint{}
}

// verifyStored runs `creditledger audit verify`'s check over the stream and every stored
// checkpoint, with pub pinned: the history must verify, with checkpoints checked.
func verifyStored(t *testing.T, url string, pub ed25519.PublicKey, checkpoints int) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("auditor"))
	require.NoError(t, err)
	defer nc.Close()
	src, err := audit.NewSource(ctxT(t), nc)
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %v", rep.Findings)
	assert.Equal(t, checkpoints, rep.Checkpoints, "checkpoints stored")
}

// As the projector's: after a stall then a cut of the ledger's connection, the checkpoint
// publisher follows the stream again at the reconnect, so a checkpoint requested then covers
// the head well before nats.go's own consumer would have come back (9 s after the cut, its
// request into the stall timing out at 10 s). The history it verified before the fault carries
// over: no finding, and the checkpoints verify.
func TestCheckpointPublisherFollowsAgainAfterACutConnection(t *testing.T) {
	t.Parallel()
	pn, logs, pub := checkpointNode(t, "10")
	before := pn.n.Head()
	first := checkpointWithin(t, pn.nc, pub, waitFor)
	require.GreaterOrEqual(t, first.Size, before)

	head, cut := pn.stallThenCut(t)
	accepted := time.Now()
	// Within 5 s of the cut: the ledger is connected again by then (the command was accepted
	// through it); nats.go's consumer alone answered nothing before 9 s.
	cp := checkpointWithin(t, pn.nc, pub, 5*time.Second-time.Since(cut))
	t.Logf("a checkpoint of size %d (the head %d) answered %s after the cut, %s after the command", cp.Size, head,
		time.Since(cut).Round(10*time.Millisecond), time.Since(accepted).Round(time.Millisecond))
	assert.GreaterOrEqual(t, cp.Size, head, "the checkpoint covers the command accepted after the cut")
	assert.Greater(t, cp.Size, first.Size)
	assert.NotEmpty(t, logs.matching(publisherFollows))
	assert.Empty(t, logs.matching(publisherFindings...))
	verifyStored(t, pn.ns.url(), pub, 2)
}

// Reconnects while the stream moves: the ledger's connection is cut three times while a client
// appends, each time after events the publisher has yet to read may be in flight. Each time the
// publisher leaves its consumer (what it still delivers never reaches the chain) and follows on
// from its position with a new one; no cut makes it find a break in the history, a checkpoint
// after each is signed, and the stream and its checkpoints verify.
func TestCheckpointPublisherReconnectsMidStream(t *testing.T) {
	t.Parallel()
	pn, logs, pub := checkpointNode(t, "1000000")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the load: one allocation at a time, each sent until it is acknowledged
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _, _ = sendUntilAcked(pn.cl, allocate(fmt.Sprintf("mid-%d", i), pn.acct, "1"), stop)
		}
	}()
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(halt)

	const cuts = 3
	signed := map[uint64]bool{} // the sizes answered: one stored checkpoint each
	for c := 1; c <= cuts; c++ {
		from := pn.n.Head()
		require.Eventually(t, func() bool { return pn.n.Head() >= from+20 }, waitFor, pollTick, "cut %d: the load appends", c)
		pn.proxy.Cut()
		pn.proxy.Reopen()
		require.Eventually(t, func() bool { return len(logs.matching(publisherFollows)) >= c }, waitFor, pollTick,
			"cut %d: the publisher never followed the stream again", c)
		head := pn.n.Head()
		cp := checkpointWithin(t, pn.nc, pub, waitFor)
		assert.GreaterOrEqual(t, cp.Size, head, "cut %d", c)
		signed[cp.Size] = true
	}
	halt()
	head := streamHead(t, pn.nc)
	cp := checkpointWithin(t, pn.nc, pub, waitFor)
	assert.GreaterOrEqual(t, cp.Size, head, "the last checkpoint covers the stream")
	signed[cp.Size] = true
	assert.Empty(t, logs.matching(publisherFindings...))
	verifyStored(t, pn.ns.url(), pub, len(signed))
}
