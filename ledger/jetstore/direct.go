package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Reading one account with batched direct gets. ReadAccount runs an ordered consumer, and the
// server keeps each such consumer for its inactive threshold (five minutes) after the read ends:
// a client that asks for many account histories makes the server hold as many consumers. A
// direct get leaves nothing behind on the server, so the reads that clients set off (as_of
// queries, the dashboard's history and log) use ReadAccountDirect.
const (
	// directBatch is how many messages one direct get request asks for (the server also stops at
	// its byte limit and ends the batch early).
	directBatch = 1000
	// directWait bounds the wait for each message of a batch (within the caller's context).
	directWait = 5 * time.Second
	// directRetries bounds the batches asked again when a replica answers with nothing although
	// the account's last message is not read yet (in a cluster any replica answers, one may lag).
	directRetries   = 20
	directRetryWait = 50 * time.Millisecond
)

// directRequest is the body of a JetStream direct get ($JS.API.DIRECT.GET.<stream>).
type directRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj"`
	Batch   int    `json:"batch"`
	UpToSeq uint64 `json:"up_to_seq"`
	// MaxBytes ends a batch early once that many bytes are sent (0: the server's max_pending).
	MaxBytes int `json:"max_bytes,omitempty"`
}

// ReadAccountDirect returns all of one account's records in order, like ReadAccount, read with batched
// direct gets up to the account's last message as the stream leader has it: it creates no
// consumer. A stream without allow_direct is read with ReadAccount.
func (s *Store) ReadAccountDirect(ctx context.Context, accountID string) ([]ledger.Record, error) {
	cfg := s.stream.CachedInfo().Config
	if !cfg.AllowDirect {
		return s.ReadAccount(ctx, accountID, 0)
	}
	subject := s.subjects.Of(accountID)
	last, _, err := leaderLast(ctx, s.nc, cfg.Name, subject)
	if err != nil {
		return nil, fmt.Errorf("last message of %s: %w", accountID, err)
	}
	if last == 0 {
		return nil, nil
	}
	inbox := s.nc.NewInbox()
	answers, unsub, err := s.directInbox(inbox, directBatch+1) // a batch, then its end: fenceheads.go
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", accountID, err)
	}
	defer unsub()
	var out []ledger.Record
	next := uint64(1)
	for empty := 0; ; {
		req, _ := json.Marshal(directRequest{Seq: next, NextFor: subject, Batch: directBatch, UpToSeq: last})
		if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+cfg.Name, inbox, req); err != nil {
			return nil, fmt.Errorf("read %s: %w", accountID, err)
		}
		n := len(out)
		done, err := readDirectBatch(ctx, answers, accountID, subject, last, &out)
		if err != nil || done {
			return out, err
		}
		if len(out) > n {
			next, empty = out[len(out)-1].Position+1, 0
			continue
		}
		if empty++; empty > directRetries {
			return nil, fmt.Errorf("read %s: no replica answered up to position %d", accountID, last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
}

// readDirectBatch appends one batch's messages to out, up to the end-of-batch marker; done means
// the message at last was read.
func readDirectBatch(ctx context.Context, answers <-chan *nats.Msg, accountID, subject string, last uint64, out *[]ledger.Record) (bool, error) {
	for {
		msg, err := nextDirect(ctx, answers) // fenceheads.go
		if err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			return false, fmt.Errorf("read %s: %w", subject, err)
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case statusEOB, statusNoResults, statusNoResponders: // end of batch; nothing at or after the position (a lagging replica); nobody serves direct gets yet
			return false, nil
		default:
			return false, fmt.Errorf("read %s: direct get answered %s %s", subject, status, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return false, fmt.Errorf("read %s: a direct get answer without a sequence", subject)
		}
		if got := msg.Header.Get(jetstream.SubjectHeader); got != subject {
			return false, fmt.Errorf("read %s: direct get answered position %d of %s", subject, seq, got)
		}
		if n := len(*out); n > 0 && seq <= (*out)[n-1].Position {
			return false, errors.New("read " + subject + ": direct get answered out of order")
		}
		v, _ := events.VersionOf(msg.Data) // 0: none to read
		*out = append(*out, ledger.Record{AccountID: accountID, Data: msg.Data, Position: seq, Version: v})
		if seq >= last {
			return true, nil
		}
	}
}

// readRangeDirect calls fn for every message of stream from position from up to head, in order,
// read with batched direct gets: no consumer is placed (nothing to miss a pull while a stream's
// leader moves, nothing left behind). In a cluster any replica answers a direct get and one may
// lag: a batch that ends before head is asked again from where it ended (directRetries times
// without progress, directRetryWait apart). The caller takes head from the stream's leader.
func (s *Store) readRangeDirect(ctx context.Context, stream string, from, head uint64, fn func(pos uint64, data []byte)) error {
	return s.readFilterDirect(ctx, stream, "", from, head, func(pos uint64, _ string, data []byte) { fn(pos, data) })
}

// readFilterDirect is readRangeDirect for the messages on filter (a subject, or a wildcard; ""
// is every message) only: last must be the position of such a message, or the stream's head.
func (s *Store) readFilterDirect(ctx context.Context, stream, filter string, from, head uint64, fn func(pos uint64, subject string, data []byte)) error {
	if from > head {
		return nil
	}
	inbox := s.nc.NewInbox()
	answers, unsub, err := s.directInbox(inbox, directBatch+1) // a batch, then its end
	if err != nil {
		return err
	}
	defer unsub()
	next := from
	for empty := 0; ; {
		req, _ := json.Marshal(directRequest{Seq: next, NextFor: filter, Batch: directBatch})
		if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, req); err != nil {
			return err
		}
		got, foreign := 0, false
	batch:
		for {
			msg, err := nextDirect(ctx, answers)
			if err != nil {
				return err
			}
			switch status := msg.Header.Get("Status"); status {
			case "":
			case statusEOB, statusNoResults, statusNoResponders: // the end of the batch; nothing at or after next (a lagging replica); nobody serves direct gets yet
				break batch
			default:
				return fmt.Errorf("direct get answered %s %s", status, msg.Header.Get("Description"))
			}
			if msg.Header.Get(jetstream.StreamHeader) != stream {
				foreign = true // a mirror that serves this stream's direct gets: asked again
				continue
			}
			pos, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return errors.New("a direct get answer without a sequence")
			}
			if pos < next {
				return fmt.Errorf("direct get answered position %d, %d asked", pos, next)
			}
			if pos > head {
				return nil // past the head the caller read: done
			}
			fn(pos, msg.Header.Get(jetstream.SubjectHeader), msg.Data)
			next, got = pos+1, got+1
			if pos == head {
				return nil
			}
		}
		if got > 0 {
			empty = 0
			continue
		}
		if empty++; empty > directRetries {
			return fmt.Errorf("no replica of %s answered from position %d up to %d (another stream answered: %v)", stream, next, head, foreign)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
}

// DirectReads is the store as the readers that clients set off (as_of queries, the dashboard,
// the fleet's as_of folds) should see it: no read leaves a consumer behind on the server.
type DirectReads struct{ *Store }

// ReadAccount reads one account with direct gets (ReadAccountDirect).
func (d DirectReads) ReadAccount(ctx context.Context, accountID string) ([]ledger.Record, error) {
	return d.Store.ReadAccountDirect(ctx, accountID)
}

// Read replays the events of the stream from position from up to its head at the time of the
// call, like Store.Read, and deletes its ordered consumer when it is done, whether it read to the
// head or fn stopped it (Store.Read's stays on the server for its inactive threshold). It follows
// the partition ownership records too, without handing them to fn, so that a head that is one is
// reached. The whole stream is read from the leader through a consumer rather than with direct
// gets, which a lagging replica may answer short without a sign.
func (d DirectReads) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	head, err := d.Head(ctx)
	if err != nil {
		return 0, err
	}
	if from < 1 {
		from = 1
	}
	if head < from {
		return head, nil
	}
	// Unfiltered, as Store.Read: the server's multi-filter path is an order slower.
	cons, err := d.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return head, fmt.Errorf("ordered consumer: %w", err)
	}
	defer d.deleteConsumer(cons)
	return head, d.consumeWith(ctx, cons, head, fn)
}

// deleteConsumerTimeout bounds deleting a read's consumer once the read is over.
const deleteConsumerTimeout = 5 * time.Second

// deleteConsumer deletes the consumer an ordered consumer has on the server, if it made one.
func (s *Store) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteConsumerTimeout)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.stream.CachedInfo().Config.Name, info.Name) // at worst it lingers until its inactive threshold
}

// An ordered consumer created just after its stream's leader moved (a node killed) can miss its
// first pull: nats.go finds out from missing heartbeats and makes the consumer again. With its
// defaults (heartbeats every 5 s, two missed) a survivor's load read nothing for 10.8 s after
// kill -9 of the stream's leader (docs/bench/takeover.sh); a heartbeat a second finds it out in
// about two.
const (
	readPullHeartbeat = time.Second
	readPullExpiry    = 5 * time.Second
)

// consumeWith reads cons until it has read the message at position until, which its filter must
// match (the stream's head unfiltered, an account's last message on its subject); only events go
// to fn (ownership records and anything else on the stream are passed over), and none past until.
// It does not end where the consumer's num_pending reaches 0: the consumer is R1 and may sit on a
// replica that lags the leader the caller took until from, and its num_pending counts only what
// that replica holds (a read ended there came back short without a sign).
func (s *Store) consumeWith(ctx context.Context, cons jetstream.Consumer, until uint64, fn func(ledger.Record) error) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(4096), jetstream.PullExpiry(readPullExpiry), jetstream.PullHeartbeat(readPullHeartbeat))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer it.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-done:
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read stream: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if md.Sequence.Stream > until {
			return nil // appended since the read began
		}
		if acct, ok := s.subjects.AccountOf(msg.Subject()); ok {
			if err := fn(ledger.Record{AccountID: acct, Data: msg.Data(), Position: md.Sequence.Stream}); err != nil {
				return err
			}
		}
		if md.Sequence.Stream == until {
			return nil
		}
	}
}
