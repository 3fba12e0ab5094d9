package jetstore

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// openOneServer starts one JetStream server for the test and opens the store on it (four
// partitions) whose appends time out after timeout (0: the default).
func openOneServer(t *testing.T, timeout time.Duration) *Store {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	st, err := Open(context.Background(), nc, Config{Partitions: 4, Timeout: timeout})
	require.NoError(t, err)
	return st
}
