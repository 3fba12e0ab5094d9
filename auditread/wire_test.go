package auditread

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"

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
