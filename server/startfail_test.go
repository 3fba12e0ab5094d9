package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

// startFailing starts a ledger that is expected not to start, and returns the error and how
// long the attempt took. A start that succeeds fails the test.
func startFailing(t *testing.T, cfg server.Config) (error, time.Duration) {
	t.Helper()
	cfg.Log = zerolog.Nop()
	if cfg.NATSListen == "" {
		cfg.NATSListen = "127.0.0.1:-1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	t0 := time.Now()
	srv, err := server.Start(ctx, cfg)
	if srv != nil {
		srv.Shutdown(context.Background())
	}
	require.Error(t, err, "the start should have failed")
	return err, time.Since(t0)
}

func TestSecondProcessOnOneDataDirFailsAtOnce(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	err, took := startFailing(t, server.Config{DataDir: l.DataDir, HTTPListen: "127.0.0.1:0"})
	assert.ErrorIs(t, err, server.ErrDataDirLocked)
	assert.Contains(t, err.Error(), l.DataDir, "the message names the directory")
	assert.Contains(t, err.Error(), fmt.Sprintf("pid %d", os.Getpid()), "the message names the holder")
	assert.Less(t, took, 2*time.Second, "fails at once, before opening anything")

	// The lock goes with its holder: once the first process stops, the directory starts again.
	l.Restart(t)
}

func TestHTTPPortTakenIsAnErrorNotAPanic(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	// A failed start used to panic in the goroutines it had started (2 of 3 tries): try a few.
	for i := 0; i < 3; i++ {
		err, _ := startFailing(t, server.Config{DataDir: t.TempDir(), HTTPListen: ln.Addr().String()})
		assert.Contains(t, err.Error(), "address already in use")
		assert.Contains(t, err.Error(), ln.Addr().String())
	}
}

func TestNATSPortTakenFailsAtOnceWithTheCause(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	err, took := startFailing(t, server.Config{DataDir: t.TempDir(), NATSListen: ln.Addr().String()})
	assert.Contains(t, err.Error(), "address already in use")
	assert.Less(t, took, 10*time.Second, "no 30 s wait for a server that cannot listen")
	assert.False(t, errors.Is(err, server.ErrDataDirLocked))
}
