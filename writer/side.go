package writer

import "context"

// Store reads and id claims run beside the writer goroutine, never on it: one slow call must not
// stall every account. A sideJob runs on one of a few workers and returns what the loop then
// applies (on the writer goroutine, where all state lives): usually the requests it held, to be
// decided again. While a job holds a request, the request's account (or command) waits; the
// other accounts go on.

// maxSideWorkers bounds the store calls in flight beside the loop; more jobs queue.
const maxSideWorkers = 8

// sideJob does its store work with ctx and returns the loop's part: a function that applies the
// outcome and returns the requests to put back into the round.
type sideJob func(ctx context.Context) (apply func() []*request)

// sideWork runs sideJobs on at most maxSideWorkers goroutines and hands their results back to
// the writer goroutine through done. Only the writer goroutine calls start and finished.
type sideWork struct {
	ctx     context.Context
	cancel  context.CancelFunc
	running int
	queued  []sideJob
	done    chan func() []*request
}

func newSideWork() *sideWork {
	ctx, cancel := context.WithCancel(context.Background())
	return &sideWork{ctx: ctx, cancel: cancel, done: make(chan func() []*request, maxSideWorkers)}
}

// start runs j on a free worker, or queues it. The queue is bounded by the requests the writer
// holds (every job holds at least one, and a request is held by one job at a time), which the
// writer's queue and round bounds limit.
func (s *sideWork) start(j sideJob) {
	if s.running >= maxSideWorkers {
		s.queued = append(s.queued, j)
		return
	}
	s.running++
	go func() { s.done <- j(s.ctx) }()
}

// finished applies one job's result (received from done) and starts a queued job in its place.
func (s *sideWork) finished(apply func() []*request) []*request {
	s.running--
	if len(s.queued) > 0 {
		j := s.queued[0]
		s.queued = s.queued[1:]
		s.start(j)
	}
	return apply()
}

// busy reports whether any job is running or queued.
func (s *sideWork) busy() bool { return s.running > 0 || len(s.queued) > 0 }

// stop cancels the jobs' context: the ones running end soon, queued ones fail at once.
func (s *sideWork) stop() { s.cancel() }
