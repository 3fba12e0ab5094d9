package server

import (
	"errors"
	"fmt"
	"testing"

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
