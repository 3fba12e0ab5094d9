package jetstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// openRejectionLog opens the store and its rejection log (one replica) on a server of the test's
// own (bareJetStream).
func openRejectionLog(t *testing.T) (*jetstore.RejectionLog, jetstream.JetStream) {
	t.Helper()
	nc, js := bareJetStream(t)
	store, err := jetstore.Open(context.Background(), nc, jetstore.Config{})
	require.NoError(t, err)
	log, err := jetstore.OpenRejections(context.Background(), store, 1)
	require.NoError(t, err)
	return log, js
}

// TestRejectionLogRoundTrip: every rejection appended comes back, in order, whether a round fits
// one message or is split (rounds of long messages), and single-rejection messages in the
// earlier format still read.
func TestRejectionLogRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, js := openRejectionLog(t)

	// The earlier format: one rejection per message on the account's subject.
	_, err := js.Publish(ctx, jetstore.RejectionSubjectPrefix+"old", []byte(`{"command_id":"c-old","account_id":"old","body_hash":"h","code":"insufficient_credits","message":"m"}`))
	require.NoError(t, err)
	// Not a rejection document: skipped.
	_, err = js.Publish(ctx, jetstore.RejectionSubjectPrefix+"junk", []byte(`not json`))
	require.NoError(t, err)

	var (
		want   []ledger.Rejection
		wantAt []ledger.RejectionAt
	)
	want = append(want, ledger.Rejection{CommandID: "c-old", AccountID: "old", BodyHash: "h",
		Err: &ledger.Error{Code: ledger.CodeInsufficientCredits, Message: "m"}})
	wantAt = append(wantAt, ledger.RejectionAt{Position: 1, Index: 0})
	round := func(n, msgLen int) []ledger.Rejection {
		rs := make([]ledger.Rejection, n)
		for i := range rs {
			rs[i] = ledger.Rejection{CommandID: fmt.Sprintf("c-%d-%d", msgLen, i), AccountID: "acme", BodyHash: "b",
				Err: &ledger.Error{Code: ledger.CodeInsufficientAllocation, Message: strings.Repeat("x", msgLen),
					Data: map[string]string{"feature": "file_security"}}}
		}
		return rs
	}
	small, large := round(50, 10), round(300, 4000) // the second round needs three messages
	for _, rs := range [][]ledger.Rejection{small, large} {
		at, err := log.AppendRejections(ctx, rs)
		require.NoError(t, err)
		require.Len(t, at, len(rs))
		info, err := js.Stream(ctx, jetstore.RejectionStream)
		require.NoError(t, err)
		assert.Equal(t, info.CachedInfo().State.LastSeq, at[len(at)-1].Position, "the last one is in the last message written")
		for i := 1; i < len(at); i++ { // each message's rejections are numbered from 0, in order
			prev, cur := at[i-1], at[i]
			ok := (cur.Position == prev.Position && cur.Index == prev.Index+1) || (cur.Position == prev.Position+1 && cur.Index == 0)
			assert.True(t, ok, "%v after %v", cur, prev)
		}
		want, wantAt = append(want, rs...), append(wantAt, at...)
	}
	info, err := js.Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	assert.Equal(t, uint64(2+1+3), info.CachedInfo().State.Msgs, "one message for the small round, three for the large")
	assert.Equal(t, ledger.RejectionAt{Position: 3, Index: 49}, wantAt[50], "the small round: message 3, indexes 0-49")
	assert.Equal(t, uint64(6), wantAt[len(wantAt)-1].Position)

	var (
		got   []ledger.Rejection
		gotAt []ledger.RejectionAt
	)
	head, err := log.ReadRejections(ctx, 1, func(r ledger.Rejection, at ledger.RejectionAt) {
		got, gotAt = append(got, r), append(gotAt, at)
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, info.CachedInfo().State.LastSeq, head)
	assert.Equal(t, want, got)
	assert.Equal(t, wantAt, gotAt, "a read names each rejection where the append said it landed")

	// Each reads back at its place, the earlier format's single rejection at index 0.
	for i, at := range wantAt {
		r, err := log.ReadRejectionAt(ctx, at)
		require.NoError(t, err, "%v", at)
		assert.Equal(t, want[i], r)
	}
	// Nothing there: an index past the message's array, a message that is not a rejection
	// document, a position past the head, no position.
	for _, at := range []ledger.RejectionAt{{Position: 3, Index: 50}, {Position: 2}, {Position: head + 1}, {}, {Position: 3, Index: -1}} {
		_, err := log.ReadRejectionAt(ctx, at)
		assert.ErrorIs(t, err, ledger.ErrNoRecord, "%v", at)
	}
	// A message gone (as past RejectionRetention): its rejections are no longer there.
	st, err := js.Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	require.NoError(t, st.DeleteMsg(ctx, 3))
	_, err = log.ReadRejectionAt(ctx, wantAt[1])
	assert.ErrorIs(t, err, ledger.ErrNoRecord)
}

// TestRejectionMessageCapsItsCount: a round of small rejections is split at
// maxRejectionsPerMessage, so that every index fits the writer's compact form.
func TestRejectionMessageCapsItsCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, _ := openRejectionLog(t)
	rs := make([]ledger.Rejection, 5000)
	for i := range rs {
		rs[i] = ledger.Rejection{CommandID: fmt.Sprint(i), AccountID: "a", BodyHash: "b", Err: &ledger.Error{Code: ledger.CodeInsufficientCredits}}
	}
	at, err := log.AppendRejections(ctx, rs)
	require.NoError(t, err)
	assert.Equal(t, ledger.RejectionAt{Position: 1, Index: 4095}, at[4095])
	assert.Equal(t, ledger.RejectionAt{Position: 2, Index: 0}, at[4096])
	r, err := log.ReadRejectionAt(ctx, at[4999])
	require.NoError(t, err)
	assert.Equal(t, "4999", r.CommandID)
}

// TestRejectionLogIsReadWithoutAConsumer: a load reads the rejection log with batched direct
// gets, placing no consumer (an ordered consumer placed while the stream's leader had just moved
// missed its first pull and held a takeover's load for 10 s), across more than one batch and
// from a position in the middle, every rejection once and in order.
func TestRejectionLogIsReadWithoutAConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, nc := jsServerConn(t)
	store, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	log, err := jetstore.OpenRejections(ctx, store, 1)
	require.NoError(t, err)
	const rounds = 2500 // more than one batch of direct gets (1,000)
	for i := range rounds {
		_, err := log.AppendRejections(ctx, []ledger.Rejection{{CommandID: fmt.Sprintf("c-%d", i), AccountID: "acme", BodyHash: "b",
			Err: ledger.Reject(ledger.CodeInsufficientCredits, "no")}})
		require.NoError(t, err)
	}
	calls := watchAPI(t, ns.ClientURL())
	for _, from := range []uint64{1, 1234} {
		var got []string
		head, err := log.ReadRejections(ctx, from, func(r ledger.Rejection, at ledger.RejectionAt) {
			require.Equal(t, fmt.Sprintf("c-%d", at.Position-1), r.CommandID)
			got = append(got, r.CommandID)
		}, nil)
		require.NoError(t, err)
		assert.Equal(t, uint64(rounds), head)
		require.Len(t, got, rounds-int(from)+1, "from %d", from)
	}
	n := calls.since(t, nc)
	consumers, gets := 0, 0
	for subj, c := range n {
		switch {
		case strings.HasPrefix(subj, "$JS.API.CONSUMER."):
			consumers += c
		case strings.HasPrefix(subj, "$JS.API.DIRECT.GET."):
			gets += c
		}
	}
	assert.Zero(t, consumers, "no consumer: %v", n)
	assert.GreaterOrEqual(t, gets, 5, "three batches from 1, two from 1234: %v", n)
}
