package auditread

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClosedWireStaysClosed: a Publish after Close (the relay answering a request it was still
// taking as it stopped) does not connect again; before, it dialled a connection no one closed.
func TestClosedWireStaysClosed(t *testing.T) {
	t.Parallel()
	var dials atomic.Int32
	w, err := NewWire(func() (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no server")
	}, nil, "test", "u", "p")
	require.NoError(t, err)
	require.Error(t, w.Publish("_R_.x", nil, nil))
	require.EqualValues(t, 1, dials.Load(), "a wire connects on its first Publish")
	w.Close()
	assert.ErrorIs(t, w.Publish("_R_.x", nil, nil), errWireClosed)
	assert.ErrorIs(t, w.Flush(), errWireClosed)
	assert.EqualValues(t, 1, dials.Load(), "no dial after Close")
}

// TestWireRefusesProtocolInSubjects: the subject is written into the PUB line as it is, so a
// line break in it would end the line and the rest would run as the answering identity's
// commands (here a publish to another subject: it went through before). The relay publishes
// only the server's own reply subjects, so this guards the Wire, not a path an auditor has.
func TestWireRefusesProtocolInSubjects(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	t.Cleanup(ns.Shutdown)
	require.True(t, ns.ReadyForConnections(10*time.Second))
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	injected, err := nc.SubscribeSync("injected")
	require.NoError(t, err)
	replies, err := nc.SubscribeSync("_R_.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	addr := ns.Addr().String()
	w, err := NewWire(func() (net.Conn, error) { return net.Dial("tcp", addr) }, nil, "test", "", "")
	require.NoError(t, err)
	t.Cleanup(w.Close)
	for _, bad := range []string{"_R_.a 0\r\n\r\nPUB injected", "_R_.a\nPUB injected", "_R_.a b", "", "_R_.>", "_R_..a"} {
		assert.Error(t, w.Publish(bad, nil, []byte("x")), "%q", bad)
	}
	require.NoError(t, w.Publish("_R_.ok", []byte("NATS/1.0 204 EOB\r\n\r\n"), nil))
	require.NoError(t, w.Flush())
	// The server delivers to nc in the order it read the wire's lines: an injected message
	// would have come first.
	m, err := replies.NextMsg(10 * time.Second)
	require.NoError(t, err, "the wire still publishes")
	assert.Equal(t, "_R_.ok", m.Subject)
	_, err = injected.NextMsg(100 * time.Millisecond)
	assert.ErrorIs(t, err, nats.ErrTimeout, "nothing published by the injected line")
}
