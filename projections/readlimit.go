package projections

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// Bounds of the per-account reads that clients set off: an as_of query and the dashboard's
// history and log each read one account's whole stored history. A client that sends thousands at
// once would otherwise make the ledger read (and hold) thousands of histories at once.
const (
	// DefaultAccountReads is how many per-account reads run at once by default.
	DefaultAccountReads = 32
	// DefaultAccountReadWait bounds how long a read waits for its turn before it is answered
	// unavailable (with api.RetryAfterData).
	DefaultAccountReadWait = 2 * time.Second
)

// ReadLimit bounds the per-account reads running at once; one is shared by the NATS and HTTP
// queries and the dashboard, so the bound holds for the whole process.
type ReadLimit struct {
	slots chan struct{}
	wait  time.Duration
}

// NewReadLimit lets at most n per-account reads run at once (DefaultAccountReads when n is 0);
// a read waits at most wait for its turn (DefaultAccountReadWait when wait is 0).
func NewReadLimit(n int, wait time.Duration) (*ReadLimit, error) {
	if n < 0 || wait < 0 {
		return nil, errors.New("projections: negative read limit or wait")
	}
	if n == 0 {
		n = DefaultAccountReads
	}
	if wait == 0 {
		wait = DefaultAccountReadWait
	}
	return &ReadLimit{slots: make(chan struct{}, n), wait: wait}, nil
}

// defaultReadLimit is the limit of a reader given none.
func defaultReadLimit() *ReadLimit {
	l, _ := NewReadLimit(0, 0) // the defaults are valid
	return l
}

// ReadAccount reads one account's history from h in a turn: it waits at most the limit's wait
// (and ctx) for one, and answers unavailable, with api.RetryAfterData, when none came.
func (l *ReadLimit) ReadAccount(ctx context.Context, h AccountHistory, accountID string) ([]ledger.Record, error) {
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
	case <-t.C:
		return nil, l.busy()
	case <-ctx.Done():
		return nil, l.busy()
	}
	defer func() { <-l.slots }()
	return h.ReadAccount(ctx, accountID)
}

// busy is the answer to a read that found no turn.
func (l *ReadLimit) busy() *ledger.Error {
	e := ledger.Reject(ledger.CodeUnavailable, "%d account histories are being read at once, the most this node reads; retry", cap(l.slots))
	e.Data = map[string]string{api.RetryAfterData: strconv.Itoa(max(1, int(l.wait.Round(time.Second)/time.Second)))}
	return e
}
