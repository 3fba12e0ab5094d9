package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// Event stream wire format (text/event-stream). Every message is
//
//	event: position
//	id: <position>
//	data: {"account_id":"<id>","position":<position>}
//
// The first message is sent at once with the projector's current position, so a client that
// reconnects learns whether it missed anything; each later one follows an applied event of the
// account (coalesced: a burst of events may yield one message with the newest position).
// An idle stream carries a ": keep-alive" comment every heartbeat.
const sseEventName = "position"

func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ledger.ValidID(id) {
		writeError(w, ledger.Reject(ledger.CodeInvalidArgument, "account_id must be 1-64 characters of A-Za-z0-9_-"))
		return
	}
	select {
	case d.streams <- struct{}{}:
		defer func() { <-d.streams }()
	default:
		writeError(w, ledger.Reject(ledger.CodeUnavailable, "too many event streams open (%d)", cap(d.streams)))
		return
	}
	closing := d.closingSignal(r) // before the first write, so a shutdown from then on is seen
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end the stream (its background read times out and cancels
	// the request's context): a stream has no request body left to read, so lift it.
	_ = rc.SetReadDeadline(time.Time{})
	updates, stop := d.proj.Watch(id)
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The position is read after the watch is registered, so no event falls between the two.
	if !d.send(w, rc, "retry: 1000\n"+message(id, d.proj.Position())) {
		return
	}
	beat := time.NewTicker(d.heartbeat)
	defer beat.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-closing:
			return
		case <-d.stop: // nil (never) without WithStop
			return
		case pos := <-updates:
			msg = message(id, pos)
		case <-beat.C:
			msg = ": keep-alive\n\n"
		}
		if !d.send(w, rc, msg) {
			return
		}
	}
}

func message(accountID string, position uint64) string {
	return fmt.Sprintf("event: %s\nid: %d\ndata: {\"account_id\":%q,\"position\":%d}\n\n", sseEventName, position, accountID, position)
}

// send writes and flushes one message under its own write deadline (the HTTP server's
// WriteTimeout would otherwise cut a long-lived stream); false means the client is gone.
func (d *Dashboard) send(w http.ResponseWriter, rc *http.ResponseController, msg string) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(2 * d.heartbeat)) // unsupported by some writers; harmless
	if _, err := w.Write([]byte(msg)); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// closingSignal is closed when the http.Server serving r begins Shutdown. Streams never go idle,
// so without it a graceful shutdown would wait for every open dashboard to leave.
func (d *Dashboard) closingSignal(r *http.Request) <-chan struct{} {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, ok := d.closing[srv]
	if !ok {
		ch = make(chan struct{})
		d.closing[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}
