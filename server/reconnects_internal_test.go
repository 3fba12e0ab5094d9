package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A reconnect reaches every follower of the stream, each on its own channel (one taking the
// signal must not leave the other without), and signalling again while one is pending never
// blocks the connection's handler.
func TestReconnectsSignalEveryFollower(t *testing.T) {
	t.Parallel()
	r := newReconnects()
	r.signal()
	r.signal() // both pending already: dropped, not waited on
	for name, ch := range map[string]chan struct{}{"projector": r.projector, "checkpoints": r.checkpoints} {
		select {
		case <-ch:
		default:
			t.Fatalf("the %s was not told", name)
		}
		select {
		case <-ch:
			t.Fatalf("the %s was told twice", name)
		default:
		}
	}
	assert.NotEqual(t, r.projector, r.checkpoints)
}
