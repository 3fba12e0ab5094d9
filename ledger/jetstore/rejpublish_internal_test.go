package jetstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// lostAcks wraps the real publish of a rejection log: the first send of each message (each
// distinct body) is stored by the server, but its answer is lost, the send ending as an
// unanswered request does, when its context expires. With always set, every send loses its
// answer. Every send reaches the real server.
type lostAcks struct {
	real   publishFunc
	always bool
	mu     sync.Mutex
	stored map[string]uint64 // body -> the sequence its first send was stored at
	sends  int
	err    error // the first real publish that failed: the test's premise does not hold
}

func (p *lostAcks) publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := p.real(ctx, subject, data, opts...)
	p.mu.Lock()
	p.sends++
	_, seen := p.stored[string(data)]
	if err != nil && p.err == nil {
		p.err = err
	}
	if err == nil && !seen {
		p.stored[string(data)] = ack.Sequence
	}
	lose := err == nil && (p.always || !seen)
	p.mu.Unlock()
	if !lose {
		return ack, err
	}
	<-ctx.Done() // the answer never comes
	return nil, ctx.Err()
}

// sendWait bounds each send in the lost-answer tests: a lost answer waits it out, and every real
// send must be answered within it (on a loaded 2-core -race run, 200-300 ms was not always enough).
const sendWait = time.Second

// rejectionLogWith starts a JetStream server and opens a rejection log whose sends wait at most
// timeout, its publish wrapped in p.
func rejectionLogWith(t *testing.T, timeout time.Duration, p *lostAcks) (*RejectionLog, jetstream.Stream) {
	t.Helper()
	ctx := context.Background()
	st := openOneServer(t, timeout)
	log, err := OpenRejections(ctx, st, 1)
	require.NoError(t, err)
	p.real, p.stored = log.publish, map[string]uint64{}
	log.publish = p.publish
	stream, err := st.js.Stream(ctx, RejectionStream)
	require.NoError(t, err)
	return log, stream
}

func rejectionsFor(n, msgLen int) []ledger.Rejection {
	rs := make([]ledger.Rejection, n)
	for i := range rs {
		rs[i] = ledger.Rejection{CommandID: fmt.Sprintf("c-%d-%d", msgLen, i), AccountID: "acme", BodyHash: "h",
			Err: &ledger.Error{Code: ledger.CodeInsufficientCredits, Message: strings.Repeat("x", msgLen)}}
	}
	return rs
}

// TestLostAckIsAnsweredByTheDuplicate: the server stores a message of the rejection log but its
// answer is lost (the send times out). The log sends the same bytes under the same Nats-Msg-Id
// again and learns the message's position from the duplicate's answer: AppendRejections returns
// where each rejection lies, and the log holds each message once. That holds for every message of
// a round split in several (each carries its own id) and for revocations (the same path). Without
// the second send the append fails with the message stored; without the id it is stored twice.
func TestLostAckIsAnsweredByTheDuplicate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := &lostAcks{}
	log, stream := rejectionLogWith(t, sendWait, p)

	small, large := rejectionsFor(3, 10), rejectionsFor(150, 4000) // large: two messages
	var all []ledger.RejectionAt
	for _, rs := range [][]ledger.Rejection{small, large} {
		at, err := log.AppendRejections(ctx, rs)
		require.NoError(t, err, "the position is known from the duplicate's answer")
		require.Len(t, at, len(rs))
		all = append(all, at...)
	}
	require.NoError(t, log.RevokeRejections(ctx, []ledger.Revocation{{CommandID: small[0].CommandID, At: all[0]}}))

	p.mu.Lock()
	require.NoError(t, p.err, "every real send was answered")
	stored, sends := p.stored, p.sends
	p.mu.Unlock()
	require.Len(t, stored, 4, "four messages: the small round, two of the large, the revocation")
	assert.Equal(t, 8, sends, "each message sent twice: the lost one, then its copy")
	positions := map[uint64]bool{}
	for _, seq := range stored {
		positions[seq] = true
	}
	for i, at := range all {
		assert.True(t, positions[at.Position], "rejection %d at %v, where a first send was stored", i, at)
	}
	assert.Equal(t, []ledger.RejectionAt{{Position: 1, Index: 0}, {Position: 1, Index: 1}, {Position: 1, Index: 2}}, all[:3])
	assert.Equal(t, ledger.RejectionAt{Position: 2, Index: 0}, all[3], "the large round's first message")
	assert.Equal(t, uint64(3), all[len(all)-1].Position, "the large round's second message")

	info, err := stream.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), info.State.Msgs, "each message stored once")
	var got []string
	var revoked []ledger.Revocation
	_, err = log.ReadRejections(ctx, 1, func(r ledger.Rejection, at ledger.RejectionAt) {
		got = append(got, r.CommandID)
	}, func(rv ledger.Revocation) { revoked = append(revoked, rv) })
	require.NoError(t, err)
	assert.Len(t, got, len(small)+len(large), "each rejection read once")
	assert.Equal(t, []ledger.Revocation{{CommandID: small[0].CommandID, At: all[0]}}, revoked)
	for _, i := range []int{0, 2, 3, len(all) - 1} { // a few: each read decodes its whole message
		r, err := log.ReadRejectionAt(ctx, all[i])
		require.NoError(t, err, "%v", all[i])
		assert.Equal(t, got[i], r.CommandID)
	}
}

// TestUnansweredSendsAreBoundedAndUncertain: when no send of a message is answered, the log gives
// up after rejectionPublishAttempts sends and says the outcome is unknown (ledger.ErrUncertain):
// the message is stored (once: every copy was a duplicate) where nobody knows, the case the
// writer can neither answer nor revoke (docs/OPERATIONS.md, Known limitations).
func TestUnansweredSendsAreBoundedAndUncertain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := &lostAcks{always: true}
	log, stream := rejectionLogWith(t, sendWait, p)

	_, err := log.AppendRejections(ctx, rejectionsFor(2, 10))
	require.ErrorIs(t, err, ledger.ErrUncertain)
	p.mu.Lock()
	assert.NoError(t, p.err)
	assert.Equal(t, rejectionPublishAttempts, p.sends)
	p.mu.Unlock()
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.State.Msgs, "stored by the first send, the copies answered as duplicates")
}

// TestRefusedSendIsNotRepeated: a send the server refuses stored nothing; it is not sent again,
// and the error is the refusal, not ledger.ErrUncertain.
func TestRefusedSendIsNotRepeated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := &lostAcks{}
	log, stream := rejectionLogWith(t, 2*time.Second, p)
	cfg := stream.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew // a full stream refuses the next message
	_, err := log.store.js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	_, err = log.store.js.Publish(ctx, RejectionSubject, []byte(`[]`)) // fills it
	require.NoError(t, err)

	_, err = log.AppendRejections(ctx, rejectionsFor(1, 10))
	require.Error(t, err)
	assert.NotErrorIs(t, err, ledger.ErrUncertain)
	p.mu.Lock()
	defer p.mu.Unlock()
	assert.Equal(t, 1, p.sends, "a refusal is an answer")
}
