package main

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// `rejections accept-loss` records the rejection log there is now (creating it when it is
// missing), so that the ledger starts again on a store whose log was deleted; a second run finds
// nothing lost.
func TestRejectionsAcceptLoss(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	url := l.ClientURL()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(context.Background(), jetstore.RejectionStream))

	code, out, errOut := cli(t, "rejections", "accept-loss", "--nats-url", url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "the ledger may start")
	_, err = js.Stream(context.Background(), jetstore.RejectionStream)
	require.NoError(t, err, "created again, empty")
	code, out, errOut = cli(t, "rejections", "accept-loss", "--nats-url", url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "nothing was lost")
	l.Restart(t) // on the log recorded now (a start on the deleted one is refused: jetstore tests)
}
