package jetstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnansweredStreamInfoIsAskedAgain: a STREAM.INFO that nobody answers (the stream's leader
// has just died and the election is running) is asked again within the caller's deadline, instead
// of one request waiting out all of it: the first request here goes unanswered (the hook holds it
// until its own deadline, as a request to a dead leader is), the second reaches the real server.
// Before, the one request took the caller's whole deadline and failed.
func TestUnansweredStreamInfoIsAskedAgain(t *testing.T) {
	t.Parallel()
	st := openOneServer(t, 0)

	var calls atomic.Int32
	firstUnanswered := func(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
		if calls.Add(1) == 1 {
			<-ctx.Done() // no answer: only the request's own deadline ends it
			return nil, ctx.Err()
		}
		return st.stream.Info(ctx, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := leaderInfo(ctx, firstUnanswered)
	require.NoError(t, err, "asked again after the unanswered request")
	assert.Equal(t, StreamName, info.Config.Name)
	assert.EqualValues(t, 2, calls.Load())

	// Without a deadline there is nothing to bound the asking: one request, its error returned.
	calls.Store(0)
	_, err = leaderInfo(context.Background(), firstUnanswered)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualValues(t, 1, calls.Load())
}
