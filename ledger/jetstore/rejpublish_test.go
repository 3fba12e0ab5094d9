package jetstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestDuplicateSendIsAnsweredWithTheFirstPosition is the contract the rejection log's second
// sends rely on (rejpublish.go): the LEDGER_REJECTIONS stream the ledger creates has its
// duplicate window, and a message sent again under the same Nats-Msg-Id within it is answered
// with the first one's sequence, marked duplicate, and not stored again.
func TestDuplicateSendIsAnsweredWithTheFirstPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, js := bareJetStream(t)
	store, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	_, err = jetstore.OpenRejections(ctx, store, 1)
	require.NoError(t, err)
	st, err := js.Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	assert.Equal(t, jetstore.RejectionDuplicateWindow, st.CachedInfo().Config.Duplicates)

	body := []byte(`[{"command_id":"c","account_id":"a","body_hash":"h","code":"insufficient_credits","message":"m"}]`)
	first, err := js.Publish(ctx, jetstore.RejectionSubject, body, jetstream.WithMsgID("m-1"))
	require.NoError(t, err)
	other, err := js.Publish(ctx, jetstore.RejectionSubject, body, jetstream.WithMsgID("m-2"))
	require.NoError(t, err)
	again, err := js.Publish(ctx, jetstore.RejectionSubject, body, jetstream.WithMsgID("m-1"))
	require.NoError(t, err)
	assert.False(t, first.Duplicate)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.Sequence, again.Sequence, "the copy is answered with where the first lies")
	assert.Equal(t, first.Sequence+1, other.Sequence)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.State.Msgs, "the copy was not stored")
}

// TestOpenRejectionsWidensAShortDuplicateWindow: an existing LEDGER_REJECTIONS stream keeps its
// duplicate window when it covers a message's sends (one created before the ledger set it has
// nats-server's default, 2 minutes), and one too short for them is widened.
func TestOpenRejectionsWidensAShortDuplicateWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		existing  time.Duration
		wantAfter time.Duration
	}{
		{"server default", 0, 2 * time.Minute},
		{"long enough", 30 * time.Second, 30 * time.Second},
		{"too short", time.Second, jetstore.RejectionDuplicateWindow},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nc, js := bareJetStream(t)
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: jetstore.RejectionStream,
				Subjects: []string{jetstore.RejectionSubjectPrefix + ">"}, Storage: jetstream.FileStorage,
				MaxAge: jetstore.RejectionRetention, Duplicates: c.existing}) // as an older build (or an operator) made it
			require.NoError(t, err)
			store, err := jetstore.Open(ctx, nc, jetstore.Config{})
			require.NoError(t, err)
			_, err = jetstore.OpenRejections(ctx, store, 1)
			require.NoError(t, err)
			st, err := js.Stream(ctx, jetstore.RejectionStream)
			require.NoError(t, err)
			assert.Equal(t, c.wantAfter, st.CachedInfo().Config.Duplicates)
		})
	}
}
