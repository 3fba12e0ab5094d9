package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
)

// TestTransientJS: the errors a forming cluster answers with are retried at start-up, others are
// not. A lease heartbeat to a bucket whose replicas have no leader yet answered "no response from
// stream", which ended a node's start (TestThreeNodesStartTogether failed on it intermittently).
func TestTransientJS(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("partition leases: heartbeat: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("heartbeat: %w", nats.ErrNoStreamResponse), true},
		{fmt.Errorf("open: %w", nats.ErrNoResponders), true},
		{fmt.Errorf("open: %w", jetstream.ErrStreamNotFound), true},
		{errors.New("stream LEDGER allows deletes: set deny_delete"), false},
	} {
		assert.Equal(t, tc.want, transientJS(tc.err), "%v", tc.err)
	}
}

// TestFirstLoadAttemptOutlastsTheOpenTimeout: a cluster node's first load of its partitions is
// one attempt however long the store takes to read, not one cut at clusterOpenTimeout and begun
// again (a third of 100k accounts took longer than that on a busy 2-core machine: the node
// loaded again and again and its leases lapsed meanwhile). The set-up steps keep their bound.
func TestFirstLoadAttemptOutlastsTheOpenTimeout(t *testing.T) {
	s := &Server{cfg: Config{ProductionConfig: ProductionConfig{Cluster: ClusterConfig{Name: "c"}}}}
	bound := func(attempt time.Duration, retry func(context.Context, string, func(context.Context) error) error) time.Duration {
		var left time.Duration
		err := retry(context.Background(), "x", func(ctx context.Context) error {
			d, ok := ctx.Deadline()
			assert.True(t, ok, "every attempt is bounded")
			left = time.Until(d)
			return nil
		})
		assert.NoError(t, err)
		return left
	}
	first := bound(firstLoadAttempt, func(ctx context.Context, _ string, step func(context.Context) error) error {
		return s.firstPartitions(ctx, step)
	})
	assert.Greater(t, first, 10*clusterOpenTimeout, "the first load is not cut at the set-up bound")
	setup := bound(clusterOpenTimeout, s.retryJS)
	assert.LessOrEqual(t, setup, clusterOpenTimeout)
}
