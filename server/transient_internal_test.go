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

	"github.com/creditledger/creditledger/ledger/jetstore"
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

// TestLostLogEndsTheRetries: a rejection log LEDGER records but the cluster does not show is
// retried as a cluster still forming (another node may have just created it), and no longer once
// it has been missing for the grace: the start then refuses, saying why. Before, a node whose
// log was deleted retried for ever (review13). A log found again starts the count afresh.
func TestLostLogEndsTheRetries(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := lostLog{grace: 30 * time.Second, now: func() time.Time { return now }}
	missing := fmt.Errorf("%w: stream LEDGER_REJECTIONS is gone: %w", jetstore.ErrRejectionsLost, jetstream.ErrStreamNotFound)

	assert.True(t, transientJS(l.check(missing)), "a cluster still forming")
	now = now.Add(29 * time.Second)
	assert.True(t, transientJS(l.check(missing)))
	other := errors.New("stream info: timeout")
	assert.Equal(t, other, l.check(other), "other errors pass as they are")
	assert.True(t, transientJS(l.check(missing)), "found again meanwhile: the grace starts afresh")
	now = now.Add(30 * time.Second)
	err := l.check(missing)
	assert.False(t, transientJS(err), "missing past the grace: %v", err)
	assert.ErrorIs(t, err, jetstore.ErrRejectionsLost)
	assert.Contains(t, err.Error(), "is gone")
	assert.Contains(t, err.Error(), "still missing after 30s")
}
