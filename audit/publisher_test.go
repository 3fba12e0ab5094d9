package audit_test

import (
	"crypto/ed25519"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

// storedCheckpoints counts the messages of the checkpoint stream.
func storedCheckpoints(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(ctxT(t), audit.CheckpointStream)
	require.NoError(t, err)
	info, err := st.Info(ctxT(t))
	require.NoError(t, err)
	return info.State.Msgs
}

func onDemandOnly(c *server.Config) { c.Checkpoints.Every, c.Checkpoints.Interval = -1, -1 }

// A request loop cannot grow the checkpoint stream: requests while the stream head stands still
// are answered with the checkpoint of that head, signed once.
func TestCheckpointRequestsSignAtMostOncePerHead(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, onDemandOnly)
	generate(t, l, "h", 2, 1)
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	var wg sync.WaitGroup
	replies := make([]string, 100)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := l.NC.RequestWithContext(ctxT(t), audit.CheckpointRequestSubject, nil)
			if assert.NoError(t, err) {
				replies[i] = string(msg.Data)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, uint64(1), storedCheckpoints(t, js), "100 requests, one head: one checkpoint")
	for _, r := range replies {
		assert.Equal(t, replies[0], r, "every request is answered with that checkpoint")
	}
	generate(t, l, "i", 1, 0)
	next := requestCheckpoint(t, l.NC)
	again := requestCheckpoint(t, l.NC)
	assert.Equal(t, next.Note, again.Note)
	assert.Equal(t, uint64(2), storedCheckpoints(t, js), "the head moved once: one more")
}

// A push consumer that delivers the checkpoint stream into the request subject (issue 11's
// feedback loop) gets no answer: a JetStream delivery is not a request.
func TestCheckpointHandlerIgnoresConsumerDeliveries(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, onDemandOnly)
	generate(t, l, "d", 1, 1)
	requestCheckpoint(t, l.NC)
	legacy, err := l.NC.JetStream()
	require.NoError(t, err)
	for _, ack := range []nats.AckPolicy{nats.AckNonePolicy, nats.AckExplicitPolicy} {
		_, err = legacy.AddConsumer(audit.CheckpointStream, &nats.ConsumerConfig{
			DeliverSubject: audit.CheckpointRequestSubject, DeliverGroup: "q", AckPolicy: ack, DeliverPolicy: nats.DeliverAllPolicy})
		require.NoError(t, err)
	}
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), audit.CheckpointStream)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		delivered := 0
		for name := range st.ListConsumers(ctxT(t)).Info() {
			delivered += int(name.Delivered.Consumer)
		}
		return delivered >= 2
	}, 10*time.Second, 10*time.Millisecond)
	// A request after the deliveries is served after them (one subscription, in order).
	generate(t, l, "e", 1, 0)
	requestCheckpoint(t, l.NC)
	assert.Equal(t, uint64(2), storedCheckpoints(t, js), "the deliveries signed nothing")
}

// A node the Signer hook says no to signs nothing, by count, time or request; once it says yes,
// the node signs.
func TestCheckpointsOnlyFromTheSigner(t *testing.T) {
	t.Parallel()
	var signer atomic.Bool
	l := testledger.Start(t, func(c *server.Config) {
		c.Checkpoints.Every, c.Checkpoints.Interval = 1, time.Millisecond
		c.Checkpoints.Signer = signer.Load
	})
	generate(t, l, "s", 2, 1)
	msg, err := l.NC.RequestWithContext(ctxT(t), audit.CheckpointRequestSubject, nil)
	require.NoError(t, err)
	assert.Contains(t, string(msg.Data), "does not sign checkpoints")
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), storedCheckpoints(t, js))
	signer.Store(true)
	cp := requestCheckpoint(t, l.NC)
	assert.Equal(t, l.Head(), cp.Size)
}

// The done-when of issue 14 for checkpoints: a rewritten earlier checkpoint (same size, other
// root) and a later checkpoint that does not extend the earlier are found by verify, even when
// signed with the ledger's own key (a leaked key); the publisher refuses to sign on top of them.
func TestForgedLogCheckpointsAreFound(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		more  bool // events between the genuine checkpoint and the forged one
		other bool // signed with another key
	}{
		"rewritten: same size, other root": {},
		"later one does not extend":        {more: true},
		"signed by another key":            {more: true, other: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := testledger.Start(t, onDemandOnly)
			generate(t, l, "f", 2, 1)
			genuine := requestCheckpoint(t, l.NC)
			if c.more {
				generate(t, l, "g", 1, 1)
			}
			key := ledgerSigningKey(t, l)
			if c.other {
				key = otherKey(t)
			}
			root := genuine.Root
			root[0] ^= 1
			note, err := audit.SignLogCheckpoint(audit.DefaultOrigin, l.Head(), root, key)
			require.NoError(t, err)
			storeRaw(t, l.ClientURL(), note, 1)

			_, src := connect(t, l.ClientURL())
			rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{ledgerKey(t, l)}})
			require.NoError(t, err)
			require.False(t, rep.OK)
			kinds := map[string]audit.Finding{}
			for _, f := range rep.Findings {
				kinds[f.Kind] = f
			}
			if c.other {
				assert.Equal(t, uint64(2), kinds[audit.KindCheckpointSignature].Checkpoint, "%v", rep.Findings)
			} else {
				assert.Equal(t, uint64(2), kinds[audit.KindCheckpointMismatch].Checkpoint, "%v", rep.Findings)
				inc := kinds[audit.KindCheckpointInconsistent]
				assert.Equal(t, uint64(2), inc.Checkpoint, "%v", rep.Findings)
				assert.Contains(t, inc.Reason, "does not extend checkpoint 1")
			}
			generate(t, l, "h", 1, 0)
			msg, err := l.NC.RequestWithContext(ctxT(t), audit.CheckpointRequestSubject, nil)
			require.NoError(t, err)
			if !c.other {
				assert.Contains(t, string(msg.Data), `"code":"internal"`, "no checkpoint on top of a forged one")
			}
		})
	}
}

// Every event's inclusion proof under a checkpoint verifies with the pinned key alone, and
// GET /v1/audit/proof answers the same proof.
func TestEventInclusionProofs(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, onDemandOnly)
	generate(t, l, "p", 3, 1)
	cp := requestCheckpoint(t, l.NC)
	generate(t, l, "q", 1, 0) // after the checkpoint: not in it
	keys := []ed25519.PublicKey{ledgerKey(t, l)}
	_, src := connect(t, l.ClientURL())
	for pos := uint64(1); pos <= cp.Size; pos++ {
		p, err := audit.BuildEventProof(ctxT(t), src, pos, 0, keys)
		require.NoError(t, err, pos)
		got, err := p.Verify(keys)
		require.NoError(t, err, pos)
		assert.Equal(t, cp.Root, got.Root)
		_, err = p.Verify([]ed25519.PublicKey{otherKey(t).Public().(ed25519.PublicKey)})
		assert.ErrorIs(t, err, audit.ErrUntrustedKey)
		bad := p
		bad.EventBase64, bad.LeafHash = strings.Replace(p.EventBase64, p.EventBase64[:4], "AAAA", 1), ""
		_, err = bad.Verify(keys)
		assert.ErrorIs(t, err, audit.ErrProofInvalid, "another event is not at that leaf")
	}
	_, err := audit.BuildEventProof(ctxT(t), src, cp.Size+1, 0, keys)
	assert.ErrorIs(t, err, audit.ErrNotCovered)

	resp, err := httpGet(t, l.HTTPURL()+"/v1/audit/proof?position=2")
	require.NoError(t, err)
	var got struct {
		OK bool `json:"ok"`
		audit.EventProof
	}
	require.NoError(t, jsonUnmarshal(resp, &got), "%s", resp)
	assert.True(t, got.OK)
	_, err = got.EventProof.Verify(keys)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), got.Position)
	resp, err = httpGet(t, l.HTTPURL()+"/v1/audit/proof?position="+"999")
	require.NoError(t, err)
	assert.Contains(t, string(resp), `"code":"not_found"`)
}
