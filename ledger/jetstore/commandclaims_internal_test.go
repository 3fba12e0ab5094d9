package jetstore

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A round's new command ids are one atomic batch (one stored write, not one each), and a batch
// with a held command id stores none of its others: ClaimCommands then creates each on its own.
func TestCommandClaimsBatchIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st := openOneServer(t, 0)
	c, err := OpenCommandClaims(ctx, st.JetStream(), 1)
	require.NoError(t, err)
	count := func() uint64 {
		s, err := st.JetStream().Stream(ctx, commandsStream)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}
	require.NoError(t, c.claimBatch(ctx, []string{"a", "b", "c"}, []string{"x", "x", "y"}))
	assert.Equal(t, uint64(3), count())
	assert.Error(t, c.claimBatch(ctx, []string{"d", "b", "e"}, []string{"x", "y", "y"}), "b is held")
	assert.Equal(t, uint64(3), count(), "nothing of a refused batch is stored")
	holders, err := c.ClaimCommands(ctx, []string{"d", "b", "e"}, []string{"x", "y", "y"})
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "x", "y"}, holders)
	assert.Equal(t, uint64(5), count())
	_, err = st.JetStream().KeyValue(ctx, CommandsBucket)
	assert.NotErrorIs(t, err, jetstream.ErrBucketNotFound, "still a key-value bucket to the nats CLI")
}

// ClaimBatch exposes claimBatch to the contract test, which runs on a three-server cluster too.
func (c *CommandClaims) ClaimBatch(ctx context.Context, ids, accounts []string) error {
	return c.claimBatch(ctx, ids, accounts)
}
