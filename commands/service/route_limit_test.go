package service_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/internal/microsvc"
)

// TestForwardsAreBounded: while no node owns the partition (a takeover), a burst of 20 commands
// on a node with a forward limit of 4: 4 wait for an owner, 16 are answered unavailable at once,
// saying the node is busy forwarding. Once an owner serves the partition the 4 get its answer,
// and the node's goroutines are back to what they were before the burst.
//
// Not parallel: it counts the process's goroutines, which the other tests of the package (all
// parallel, paused while this one runs) would otherwise change under it.
func TestForwardsAreBounded(t *testing.T) {
	const limit, burst = 4, 20
	conn := connector(t)
	ownerNC, frontNC, nc := conn(), conn(), conn()
	owner, err := service.New(fakeWriter{}, zerolog.Nop())
	require.NoError(t, err)
	front, err := service.New(fakeWriter{}, zerolog.Nop())
	require.NoError(t, err)
	require.Error(t, front.Route(router{}, frontNC, time.Minute, service.WithForwardLimit(0)))
	require.NoError(t, front.Route(router{local: false}, frontNC, time.Minute, service.WithForwardLimit(limit)))
	svc, err := microsvc.Add(frontNC, microsvc.Config{Name: commands.ServiceName, Version: "1.2.3", StatsHandler: front.EndpointStats})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, front.Register(svc))
	serveOwner := func() *nats.Subscription {
		sub, err := owner.ServeOwner(ownerNC, 0, router{local: true})
		require.NoError(t, err)
		require.NoError(t, ownerNC.Flush())
		return sub
	}
	// One command through an owner first, so that what a first forward sets up for good (the
	// front connection's reply subscription) is in the baseline, taken while the owner serves
	// (it serves again at the end); then the owner goes away.
	sub := serveOwner()
	require.NoError(t, frontNC.Flush())
	assert.Empty(t, send(t, nc, "allocate_credits", body("allocate_credits", "warm")).Header.Get(micro.ErrorCodeHeader))
	replies, err := nc.SubscribeSync(nc.NewInbox() + ".*")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	baseline := runtime.NumGoroutine()
	require.NoError(t, sub.Unsubscribe())
	require.NoError(t, ownerNC.Flush())

	inbox := replies.Subject[:len(replies.Subject)-1]
	for i := range burst {
		require.NoError(t, nc.PublishRequest(commands.Subject("allocate_credits"), fmt.Sprintf("%s%d", inbox, i),
			[]byte(body("allocate_credits", fmt.Sprintf("burst-%d", i)))))
	}
	require.NoError(t, nc.Flush())
	began := time.Now()
	for range burst - limit {
		msg, err := replies.NextMsg(5 * time.Second)
		require.NoError(t, err, "the commands past the limit are answered at once")
		assert.Equal(t, "unavailable", msg.Header.Get(micro.ErrorCodeHeader))
		assert.Contains(t, msg.Header.Get(micro.ErrorHeader), "busy forwarding")
		assert.Contains(t, string(msg.Data), `"`+api.RetryAfterData+`":"1"`)
	}
	assert.Less(t, time.Since(began), 30*time.Second, "answered well before the forward wait (a minute)")
	assert.Equal(t, limit, front.Forwarding(), "the first %d wait for an owner", limit)
	_, err = replies.NextMsg(50 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "the waiting commands are not answered before an owner exists")

	sub = serveOwner()
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	for range limit {
		msg, err := replies.NextMsg(5 * time.Second)
		require.NoError(t, err)
		assert.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "the owner's answer: %s", msg.Data)
		assert.True(t, strings.Contains(string(msg.Data), `"ok":true`), "%s", msg.Data)
	}
	require.Eventually(t, func() bool { return front.Forwarding() == 0 }, 5*time.Second, 5*time.Millisecond)
	// Eventually runs the condition on a goroutine of its own: that one is not the node's.
	require.Eventually(t, func() bool { return runtime.NumGoroutine()-1 <= baseline }, 5*time.Second, 5*time.Millisecond,
		"goroutines back to %d", baseline)
}
