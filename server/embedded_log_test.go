package server

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/authz"
)

// lockedBuffer is a log sink the embedded server's goroutines may write to concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEmbeddedServerErrorsReachTheLog: the embedded server's errors (here a failed login) reach
// the process's log as component=nats lines; before, the server ran with NoLog and a disk or
// route failure was never seen.
func TestEmbeddedServerErrorsReachTheLog(t *testing.T) {
	cfg, err := authz.Parse([]byte(`
nats:
  users:
    - {role: ledger, user: ledger, password: "a-long-ledger-password-for-tests"}
    - {role: dashboard, user: dashboard, password: "a-long-dashboard-password-for-tests"}
`), false)
	require.NoError(t, err)
	var sink lockedBuffer
	ns, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: t.TempDir(), Auth: cfg, Log: zerolog.New(&sink)})
	require.NoError(t, err)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	_, err = nats.Connect(ns.ClientURL(), nats.UserInfo("dashboard", "wrong"), nats.MaxReconnects(0))
	require.Error(t, err)
	require.Eventually(t, func() bool { return strings.Contains(sink.String(), `"component":"nats"`) },
		10*time.Second, 10*time.Millisecond, "no nats line in the log: %s", sink.String())
	assert.Contains(t, sink.String(), `"level":"error"`)
	assert.NotContains(t, sink.String(), "a-long-dashboard-password-for-tests")
}
