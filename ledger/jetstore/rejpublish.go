package jetstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/creditledger/creditledger/ledger"
)

// A message of the rejection log whose publish got no answer (its acknowledgement lost, or the
// stream leader slow or gone) may still be stored, at a position nobody knows: the writer could
// then neither answer its rejections nor revoke them, and a later load would replay a rejection
// that was never answered. So every message carries a Nats-Msg-Id of its own, and a publish that
// ends without an answer is sent again, the same bytes under the same id: within the stream's
// duplicate window the server answers a copy of a stored message with that message's sequence
// (PubAck.Duplicate) and stores nothing, so the position becomes known.
const (
	// rejectionPublishAttempts bounds the sends of one message: the first and two more after
	// attempts that got no answer, each bounded by the store's timeout (DefaultAppendTimeout) and
	// all by the caller's context.
	rejectionPublishAttempts = 3
	// inProcessPause is the wait before sending again after the server answered that the first
	// send of the message is still being replicated (errCodeDuplicateInProcess).
	inProcessPause = 100 * time.Millisecond
	// RejectionDuplicateWindow is the LEDGER_REJECTIONS stream's duplicate window when the ledger
	// creates it (nats-server's default; far longer than a message's attempts take).
	RejectionDuplicateWindow = 2 * time.Minute
	// errCodeDuplicateInProcess is JetStream's "duplicate message id is in process": a clustered
	// stream's leader holds the first send of the id in flight, neither stored nor refused yet.
	errCodeDuplicateInProcess = 10158
)

// publishFunc is the one call the log makes to store a message: the JetStream client's Publish
// (a test wraps it to lose an acknowledgement after the server stored the message).
type publishFunc func(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)

// publishCertain stores data on subject and returns its position. It sends data under one fresh
// Nats-Msg-Id, and again while a send ends without an answer, at most rejectionPublishAttempts
// times. It returns ledger.ErrUncertain (wrapping the last error) when some send got no answer
// and no later one did: the message may then be stored, where nobody knows.
func (l *RejectionLog) publishCertain(ctx context.Context, subject string, data []byte) (uint64, error) {
	id := nuid.Next()
	unanswered := 0
	var err error
	for attempt := 1; attempt <= rejectionPublishAttempts; attempt++ {
		var ack *jetstream.PubAck
		ack, err = l.publishOnce(ctx, subject, data, id)
		if err == nil {
			return ack.Sequence, nil
		}
		if !outcomeUnknown(err) {
			break // refused: this send stored nothing
		}
		unanswered++
		if ctx.Err() != nil || attempt == rejectionPublishAttempts {
			break
		}
		if inProcess(err) && !pause(ctx, inProcessPause) {
			break
		}
	}
	if unanswered > 0 {
		return 0, fmt.Errorf("%w: %d of the sends of message %s got no answer: %w", ledger.ErrUncertain, unanswered, id, err)
	}
	return 0, err
}

// publishOnce sends data once under msgID, bounded by the store's timeout.
func (l *RejectionLog) publishOnce(ctx context.Context, subject string, data []byte, msgID string) (*jetstream.PubAck, error) {
	pctx, cancel := context.WithTimeout(ctx, l.store.timeout)
	defer cancel()
	return l.publish(pctx, subject, data, jetstream.WithMsgID(msgID))
}

// outcomeUnknown says a send ended without the server's word on it: it may have been stored.
func outcomeUnknown(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, nats.ErrTimeout) || inProcess(err)
}

// inProcess says the server holds an earlier send of the same id in flight (a clustered stream).
func inProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeDuplicateInProcess
}

// pause waits d, or less if ctx ends first; it reports whether the wait ran its course.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// duplicateWindowNeeded is the shortest duplicate window that covers every send of one message
// when one send waits at most timeout.
func duplicateWindowNeeded(timeout time.Duration) time.Duration {
	return rejectionPublishAttempts * (timeout + inProcessPause)
}

// duplicateWindow is the window the ledger gives a LEDGER_REJECTIONS stream it creates or
// corrects: RejectionDuplicateWindow, or twice what the sends need if that is longer.
func duplicateWindow(timeout time.Duration) time.Duration {
	if w := 2 * duplicateWindowNeeded(timeout); w > RejectionDuplicateWindow {
		return w
	}
	return RejectionDuplicateWindow
}

// ensureDuplicateWindow widens the duplicate window of an existing LEDGER_REJECTIONS stream that
// is too short for a message's sends (one created before the ledger set it has nats-server's
// default, 2 minutes, which is enough; an operator may have shortened it): a copy sent after the
// window would be stored a second time.
func ensureDuplicateWindow(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, timeout time.Duration) (jetstream.Stream, error) {
	cfg := st.CachedInfo().Config
	if cfg.Duplicates >= duplicateWindowNeeded(timeout) {
		return st, nil
	}
	cfg.Duplicates = duplicateWindow(timeout)
	if cfg.MaxAge > 0 && cfg.Duplicates > cfg.MaxAge {
		cfg.Duplicates = cfg.MaxAge // the server refuses a window longer than the retention
	}
	updated, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("widen the duplicate window of stream %s to %s (set it with `nats stream edit %s --dupe-window`): %w",
			RejectionStream, cfg.Duplicates, RejectionStream, err)
	}
	return updated, nil
}
