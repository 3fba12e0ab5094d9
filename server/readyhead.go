package server

import (
	"context"
	"time"
)

// readyHeadAge is how long one event-store round trip answers GET /readyz. The route is open
// (no token): when every request made a round trip of its own (a stream info request of the
// JetStream API), a flood of probes from anyone who reached the HTTP port filled the server's
// queue of info requests, which the server drops whole once full, the ledger's own requests
// (stream and consumer info of its reads and takeovers) among them.
const readyHeadAge = 500 * time.Millisecond

// sharedHead asks the event store for its head one request at a time and at most once per
// readyHeadAge; the probes that come meanwhile share the answer.
type sharedHead struct {
	head func(context.Context) (uint64, error)
	now  func() time.Time
	// turn is held by the probe that reads or asks; it guards the fields below.
	turn chan struct{}
	at   time.Time
	val  uint64
	err  error
}

func newSharedHead(head func(context.Context) (uint64, error), now func() time.Time) *sharedHead {
	return &sharedHead{head: head, now: now, turn: make(chan struct{}, 1)}
}

// get is the store's head as of at most readyHeadAge ago. The round trip is bounded by
// readyTimeout, not by ctx: one probe that gave up must not leave its cancellation as the
// answer of the others.
func (h *sharedHead) get(ctx context.Context) (uint64, error) {
	select {
	case h.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-h.turn }()
	if !h.at.IsZero() && h.now().Sub(h.at) < readyHeadAge {
		return h.val, h.err
	}
	rctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	h.val, h.err = h.head(rctx)
	h.at = h.now()
	return h.val, h.err
}
