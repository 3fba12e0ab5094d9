package jetstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// FirstSince is the position of the first LEDGER message stored at or after t (JetStream's
// stored time, the message metadata's timestamp), from the stream's leader; found is false when
// none was stored since. `command-ids record` reads from there: the commands of the window
// LEDGER_COMMANDS holds (CommandRetention).
func (s *Store) FirstSince(ctx context.Context, t time.Time) (position uint64, found bool, err error) {
	return firstSince(ctx, s.nc, StreamName, t)
}

// FirstSince is the position of the first rejection log message stored at or after t, as
// Store.FirstSince.
func (l *RejectionLog) FirstSince(ctx context.Context, t time.Time) (position uint64, found bool, err error) {
	return firstSince(ctx, l.store.nc, RejectionStream, t)
}

// firstSince asks the stream's leader for its first message stored at or after t: the server
// finds the position from the stored times, and the next message from there (next_by_subj),
// so that a removed message at that position does not end the search.
func firstSince(ctx context.Context, nc *nats.Conn, stream string, t time.Time) (uint64, bool, error) {
	m, found, err := leaderGet(ctx, nc, stream, map[string]any{"start_time": t.UTC(), "next_by_subj": ">"})
	if err != nil {
		return 0, false, fmt.Errorf("stream %s: first message since %s: %w", stream, t.UTC().Format(time.RFC3339), err)
	}
	return m.seq, found, nil
}
