package projections

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWaitForWakesEachAtItsPosition: a min_position wait returns once the projector has applied
// its position, is registered only while it waits (not woken, and still registered, while the
// position is below it), and is forgotten when its context ends.
func TestWaitForWakesEachAtItsPosition(t *testing.T) {
	t.Parallel()
	p := NewProjector(zerolog.Nop())
	done := map[uint64]chan error{}
	for _, pos := range []uint64{3, 5, 7} {
		ch := make(chan error, 1)
		done[pos] = ch
		go func() { ch <- p.WaitFor(context.Background(), pos) }()
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- p.WaitFor(ctx, 100) }()
	require.Eventually(t, func() bool { return p.waiters.waiting() == 4 }, 10*time.Second, time.Millisecond)

	for pos := uint64(1); pos <= 4; pos++ {
		p.Pass(pos)
	}
	require.NoError(t, <-done[3])
	assert.Equal(t, 3, p.waiters.waiting(), "the waits for 5, 7 and 100 go on")
	for _, pos := range []uint64{5, 7} {
		select {
		case err := <-done[pos]:
			t.Fatalf("the wait for %d returned at position 4: %v", pos, err)
		default:
		}
	}
	p.Pass(7) // a jump past two waits wakes both
	require.NoError(t, <-done[5])
	require.NoError(t, <-done[7])
	cancel()
	require.ErrorIs(t, <-gaveUp, context.Canceled)
	assert.Equal(t, 0, p.waiters.waiting(), "a wait given up is forgotten")
	require.NoError(t, p.WaitFor(context.Background(), 7), "a position already applied returns at once")
	assert.Equal(t, 0, p.waiters.waiting())
}
