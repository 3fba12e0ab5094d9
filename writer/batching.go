package writer

import "time"

// batching is the group-commit policy: when the next round starts. It is a pure function of
// what waits and when (roundInputs), so it is tested without a store or a clock.
type batching struct {
	// linger bounds the wait after an append for the requests its replies set off (negative:
	// never wait); maxInflight bounds the appends in flight; pipelineMin is how many waiting
	// requests justify an append while another is in flight.
	linger      time.Duration
	maxInflight int
	pipelineMin int
}

// lastAppend describes the last finished append: how many client requests it answered (0 after
// a failed append), when it finished, and how long it took.
type lastAppend struct {
	answered int
	at       time.Time
	took     time.Duration
}

// roundInputs is what the policy looks at.
type roundInputs struct {
	now      time.Time
	waiting  int // requests waiting to be decided
	inflight int // appends in flight
	// snapshotDue holds rounds back until the appends in flight have finished and the snapshot
	// is taken.
	snapshotDue bool
	last        lastAppend
}

// next says whether to start a round now, or else how long to linger first (0: neither; wait
// for something to happen).
func (b batching) next(in roundInputs) (start bool, linger time.Duration) {
	if in.waiting == 0 || in.snapshotDue {
		return false, 0
	}
	if wait := b.lingering(in); wait > 0 {
		return false, wait
	}
	if in.inflight >= b.maxInflight || (in.inflight > 0 && in.waiting < b.pipelineMin) {
		return false, 0
	}
	return true, 0
}

// lingering says how much longer to hold back the next round: while fewer requests are waiting
// than the last append answered, for at most linger and half the last append's time after it
// (so a round grows by at most half, and a fast store is barely held back); 0 means go now.
// Never while idle or with an append in flight, and not once lingerEnough requests wait.
func (b batching) lingering(in roundInputs) time.Duration {
	if b.linger < 0 || in.waiting == 0 || in.waiting >= min(in.last.answered, lingerEnough) || in.inflight > 0 {
		return 0
	}
	return max(0, min(b.linger, in.last.took/2)-in.now.Sub(in.last.at))
}
