package jetstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// Fingerprints of stored messages (ledger.Store.Fingerprints): ledger.MessageFingerprint over the
// message's subject and data. A writer snapshot records the one at its head; a load compares it
// with the stream's, so that a snapshot taken on a LEDGER stream that was since deleted and
// created again is not restored onto the new one.
//
// Each position is read with a direct get first: any replica answers, and a message it returns
// is the position's (every replica stores the same committed message there). One that answers
// with nothing may only lag, so the position is then asked of the stream's leader (a message
// get), whose "no message" is the answer; a stream without direct gets is read from the leader.

// Fingerprints returns the fingerprint of the message at each position of ps (nil: the stream
// holds none there), read after every write that finished before the call began.
func (s *Store) Fingerprints(ctx context.Context, ps []uint64) ([][]byte, error) {
	return s.fingerprints(ctx, ps, 0)
}

// FingerprintsNear (ledger.NearReader) is Fingerprints without waiting for the leader: a position
// no replica answered for is asked of the leader for at most nearLeaderWait, then left nil (the
// replica may only lag; the leader may be in an election).
func (s *Store) FingerprintsNear(ctx context.Context, ps []uint64) ([][]byte, error) {
	return s.fingerprints(ctx, ps, nearLeaderWait)
}

// fingerprints reads each position with a direct get, then from the leader, bounded by
// leaderWait when it is set (a leader that does not answer in time leaves the position nil).
func (s *Store) fingerprints(ctx context.Context, ps []uint64, leaderWait time.Duration) ([][]byte, error) {
	cfg := s.stream.CachedInfo().Config
	out := make([][]byte, len(ps))
	for i, pos := range ps {
		if pos == 0 {
			continue // no message is ever at position 0
		}
		if cfg.AllowDirect {
			if m, found := s.directAt(ctx, cfg.Name, pos); found {
				out[i] = ledger.MessageFingerprint(m.subject, m.data)
				continue
			}
		}
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if leaderWait > 0 {
			lctx, cancel = context.WithTimeout(ctx, leaderWait)
		}
		m, found, err := leaderGet(lctx, s.nc, cfg.Name, map[string]any{"seq": pos})
		cancel()
		switch {
		case err != nil && leaderWait > 0 && ctx.Err() == nil:
			continue // the leader did not answer at once: unknown, left nil
		case err != nil:
			return nil, fmt.Errorf("message at position %d: %w", pos, err)
		case found && m.seq != pos:
			return nil, fmt.Errorf("message at position %d: the leader answered position %d", pos, m.seq)
		case found:
			out[i] = ledger.MessageFingerprint(m.subject, m.data)
		}
	}
	return out, nil
}

// directAt reads the message at pos with a direct get, which any replica of the stream may
// answer. found is false when the answer held no message of this stream: nothing there (or not
// yet, at a lagging replica), nobody serving direct gets, another stream's answer (a mirror), or
// no answer within directWait; the caller then asks the leader.
func (s *Store) directAt(ctx context.Context, stream string, pos uint64) (leaderMsg, bool) {
	req, err := json.Marshal(map[string]any{"seq": pos})
	if err != nil {
		return leaderMsg{}, false
	}
	dctx, cancel := context.WithTimeout(ctx, directWait)
	defer cancel()
	msg, err := s.nc.RequestWithContext(dctx, "$JS.API.DIRECT.GET."+stream, req)
	if err != nil || msg.Header.Get("Status") != "" || msg.Header.Get(jetstream.StreamHeader) != stream {
		return leaderMsg{}, false
	}
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq != pos {
		return leaderMsg{}, false
	}
	return leaderMsg{seq: seq, subject: msg.Header.Get(jetstream.SubjectHeader), data: msg.Data}, true
}
