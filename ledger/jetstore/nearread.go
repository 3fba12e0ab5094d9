package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// nearBatch is how many messages one direct get of ReadNear asks for: a takeover's load reads
// tens of thousands, and each batch costs a round trip. 60,000 records on one server here:
// 0.48-0.58 s with 8,192 a batch, 0.65-0.70 s with 1,000; through a consumer, 0.22-0.30 s.
const nearBatch = 8192

// nearLeaderWait is how long ReadNear waits for the stream's leader to tell its head: one that
// answers is read as Read reads (a consumer, twice as fast as direct gets); one that does not
// (an election) is not waited for.
const nearLeaderWait = 300 * time.Millisecond

// ReadNear (ledger.NearReader) replays the events from position from on. When the stream's
// leader answers within nearLeaderWait it reads up to the leader's head, as Read does; otherwise
// up to the last message that the replica answering holds, with batched direct gets, which ask
// nothing of the leader (no stream info, no consumer), so it goes on while the stream elects one,
// after its leader died. It may then end behind the leader's head; the caller reads the rest from
// the leader (Read from the returned position on). Ownership records and anything else that is
// not an event are passed over, as Read does. A stream without allow_direct is read from its
// leader (Read).
func (s *Store) ReadNear(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	cfg := s.stream.CachedInfo().Config
	if !cfg.AllowDirect {
		return s.Read(ctx, from, fn)
	}
	hctx, cancel := context.WithTimeout(ctx, nearLeaderWait)
	head, err := s.Head(hctx)
	cancel()
	if err == nil {
		return head, s.readTo(ctx, from, head, fn)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if from < 1 {
		from = 1
	}
	inbox := s.nc.NewInbox()
	answers, unsub, err := s.directInbox(inbox, nearBatch+1) // a batch, then its end
	if err != nil {
		return 0, err
	}
	defer unsub()
	next := from
	for empty := 0; ; {
		req, _ := json.Marshal(directRequest{Seq: next, Batch: nearBatch})
		if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+cfg.Name, inbox, req); err != nil {
			return 0, fmt.Errorf("read near: %w", err)
		}
		got, pending := 0, uint64(0)
	batch:
		for {
			msg, err := nextDirect(ctx, answers) // fenceheads.go
			if err != nil {
				return 0, fmt.Errorf("read near from position %d: %w", next, err)
			}
			switch status := msg.Header.Get("Status"); status {
			case "":
			case statusEOB: // what the answering replica holds after the batch
				pending, _ = strconv.ParseUint(msg.Header.Get(pendingHeader), 10, 64)
				break batch
			case statusNoResults: // the replica holds nothing at or after next
				if got == 0 {
					return next - 1, nil
				}
				break batch
			case statusNoResponders:
				return 0, fmt.Errorf("read near from position %d: nobody serves direct gets of %s", next, cfg.Name)
			default:
				return 0, fmt.Errorf("read near: direct get answered %s %s", status, msg.Header.Get("Description"))
			}
			if msg.Header.Get(jetstream.StreamHeader) != cfg.Name {
				continue // a mirror that serves this stream's direct gets: its batch is asked again
			}
			pos, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return 0, errors.New("read near: a direct get answer without a sequence")
			}
			if pos < next {
				return 0, fmt.Errorf("read near: direct get answered position %d, %d asked", pos, next)
			}
			if acct, ok := s.subjects.AccountOf(msg.Header.Get(jetstream.SubjectHeader)); ok {
				if err := fn(ledger.Record{AccountID: acct, Data: msg.Data, Position: pos}); err != nil {
					return 0, err
				}
			}
			next, got = pos+1, got+1
		}
		switch {
		case got > 0 && pending == 0:
			return next - 1, nil // the replica that answered holds nothing after this batch
		case got > 0:
			empty = 0
			continue
		}
		if empty++; empty > directRetries {
			return 0, fmt.Errorf("read near: no replica of %s answered from position %d", cfg.Name, next)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
}

var _ ledger.NearReader = (*Store)(nil)
