package jetstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestRejectionLogRoundTrip: every rejection appended comes back, in order, whether a round fits
// one message or is split (rounds of long messages), and single-rejection messages in the
// earlier format still read.
func TestRejectionLogRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, js := bareJetStream(t)
	store, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	log, err := jetstore.OpenRejections(ctx, store, 1)
	require.NoError(t, err)

	// The earlier format: one rejection per message on the account's subject.
	_, err = js.Publish(ctx, jetstore.RejectionSubjectPrefix+"old", []byte(`{"command_id":"c-old","account_id":"old","body_hash":"h","code":"insufficient_credits","message":"m"}`))
	require.NoError(t, err)
	// Not a rejection document: skipped.
	_, err = js.Publish(ctx, jetstore.RejectionSubjectPrefix+"junk", []byte(`not json`))
	require.NoError(t, err)

	var want []ledger.Rejection
	want = append(want, ledger.Rejection{CommandID: "c-old", AccountID: "old", BodyHash: "h",
		Err: &ledger.Error{Code: ledger.CodeInsufficientCredits, Message: "m"}})
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
		pos, err := log.AppendRejections(ctx, rs)
		require.NoError(t, err)
		info, err := js.Stream(ctx, jetstore.RejectionStream)
		require.NoError(t, err)
		assert.Equal(t, info.CachedInfo().State.LastSeq, pos, "the position of the last message written")
		want = append(want, rs...)
	}
	info, err := js.Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	assert.Equal(t, uint64(2+1+3), info.CachedInfo().State.Msgs, "one message for the small round, three for the large")

	var got []ledger.Rejection
	head, err := log.ReadRejections(ctx, 1, func(r ledger.Rejection) { got = append(got, r) })
	require.NoError(t, err)
	assert.Equal(t, info.CachedInfo().State.LastSeq, head)
	assert.Equal(t, want, got)
}
