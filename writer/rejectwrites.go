package writer

import (
	"context"
	"time"
)

// rejectionWrites is the group commit of business rejections, beside the appends: one write to
// the rejection log in flight at a time; the rejections decided meanwhile queue for the next
// write. A round's rejections used to travel with its append and the round waited for both
// fsyncs; now an append's accepted commands are answered (and the next round starts) when the
// append is durable, and its rejections when their write is. Until then a rejection is pending:
// a retry of its command_id waits for the first answer.
type rejectionWrites struct {
	queued   []pendingReject
	inflight bool
	done     chan rejectionsDone
}

// rejectionsDone is the outcome of one write to the rejection log.
type rejectionsDone struct {
	rejects []pendingReject
	pos     uint64
	err     error
	took    time.Duration
}

func newRejectionWrites() rejectionWrites {
	return rejectionWrites{done: make(chan rejectionsDone, 1)}
}

// busy reports whether rejections are being written or wait to be.
func (q *rejectionWrites) busy() bool { return q.inflight || len(q.queued) > 0 }

// writeRejections starts writing the queued rejections unless a write is in flight (its end
// starts the next). ctx must outlive shutdown: a rejection decided is answered only once durable.
func (w *Writer) writeRejections(ctx context.Context) {
	q := &w.rejw
	if q.inflight || len(q.queued) == 0 {
		return
	}
	batch := q.queued
	q.queued, q.inflight = nil, true
	log := w.opts.Rejections
	go func() {
		began := time.Now()
		pos, err := log.AppendRejections(ctx, rejectionsOf(batch))
		q.done <- rejectionsDone{rejects: batch, pos: pos, err: err, took: time.Since(began)}
	}()
}

// rejectionsWritten answers a finished write's rejections and starts the next write.
func (w *Writer) rejectionsWritten(ctx context.Context, d rejectionsDone) {
	w.rejw.inflight = false
	w.finishRejections(d)
	if d.err == nil {
		w.last.answered += len(d.rejects) // they come back too: the linger waits for them
	}
	w.writeRejections(ctx)
}
