package main

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// `command-ids record` on a lone embedded node's store (which records no command id while it
// owns every partition) records the accepted and the rejected command, and a second run finds
// both in place; after the bucket is deleted, a run records them again. Pointed at a server without a ledger it fails (exit 2) and says so.
func TestCommandIDsRecord(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	url := l.ClientURL()
	code, _, last := cli(t, "command", "purchase_license", "--nats-url", url, "--account", "acme", "--license-id", "L-1", "--source", "sales", "--credits", "100")
	require.Equal(t, 0, code, last)
	code, _, last = cli(t, "command", "release_credits", "--nats-url", url, "--account", "acme", "--feature", "file_security", "--credits", "5")
	require.Equal(t, exitRejected, code, last)

	code, out, last := cli(t, "command-ids", "record", "--nats-url", url)
	require.Equal(t, 0, code, last)
	assert.Contains(t, out, "command ids recorded: 2 (found in place: 0)")
	assert.NotContains(t, out, "left as it is")
	code, out, last = cli(t, "command-ids", "record", "--nats-url", url)
	require.Equal(t, 0, code, last)
	assert.Contains(t, out, "command ids recorded: 0 (found in place: 2)")

	nc, err := nats.Connect(url) // the bucket lost: recorded again, in a bucket made anew
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(context.Background(), jetstore.CommandsBucket))
	code, out, last = cli(t, "command-ids", "record", "--nats-url", url)
	require.Equal(t, 0, code, last)
	assert.Contains(t, out, "command ids recorded: 2 (found in place: 0)")

	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	code, _, last = cli(t, "command-ids", "record", "--nats-url", ns.ClientURL())
	assert.Equal(t, exitError, code)
	assert.Contains(t, last, "no ledger here")
}
