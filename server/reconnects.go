package server

// reconnects tells each follower of the LEDGER stream (the projector, the checkpoint publisher)
// that the store connection reconnected, so that it follows the stream again at once with a new
// consumer. Each has a channel of its own: one signal taken by one follower must not be lost to
// the other. One pending signal each is enough (a follower follows on from where it is then),
// so signalling never blocks the connection's handler.
type reconnects struct {
	projector   chan struct{}
	checkpoints chan struct{}
}

func newReconnects() *reconnects {
	return &reconnects{projector: make(chan struct{}, 1), checkpoints: make(chan struct{}, 1)}
}

// signal tells every follower, without waiting for any.
func (r *reconnects) signal() {
	for _, ch := range [...]chan struct{}{r.projector, r.checkpoints} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
