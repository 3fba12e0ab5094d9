package microsvc

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// endpoint is one endpoint's subscription and counters.
//
// num_requests counts the requests delivered (as micro counts them, answered or not);
// num_errors the error answers, the answers that could not be sent and the requests the
// subscription dropped (a slow consumer); processing_time sums, over the answered requests,
// the time from delivery to the answer, and average_processing_time is that sum over the
// answered requests (with micro it is the handler's run time, which here says nothing: a
// handler hands its request on and returns).
type endpoint struct {
	info micro.EndpointInfo
	sub  *nats.Subscription

	mu         sync.Mutex
	requests   int
	answers    int
	errors     int
	lastError  string
	processing time.Duration
	dropped    int // the subscription's dropped messages, as last read
}

const errDropped = "nats: slow consumer, messages dropped"

func (e *endpoint) received() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests++
}

// answered records an answer sent after took; serviceErr is "" for a success.
func (e *endpoint) answered(took time.Duration, serviceErr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answers++
	e.processing += took
	if serviceErr != "" {
		e.errors++
		e.lastError = serviceErr
	}
}

// notSent records that an answer already counted could not be sent: an error, counted once
// (counted says whether it already is one).
func (e *endpoint) notSent(counted bool, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !counted {
		e.errors++
	}
	e.lastError = why
}

// readDropped adds the requests the subscription dropped since the last read. Lock held.
func (e *endpoint) readDropped() {
	if e.sub == nil {
		return
	}
	n, err := e.sub.Dropped()
	if err != nil || n <= e.dropped { // a closed subscription reports an error: keep the last count
		return
	}
	e.errors += n - e.dropped
	e.lastError = errDropped
	e.dropped = n
}

// stopping reads the drop count one last time before the subscription goes.
func (e *endpoint) stopping() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.readDropped()
}

func (e *endpoint) stats() *micro.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.readDropped()
	st := &micro.EndpointStats{Name: e.info.Name, Subject: e.info.Subject, QueueGroup: e.info.QueueGroup,
		NumRequests: e.requests, NumErrors: e.errors, LastError: e.lastError, ProcessingTime: e.processing}
	if e.answers > 0 {
		st.AverageProcessingTime = e.processing / time.Duration(e.answers)
	}
	return st
}
