package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading with batched direct gets. An auditor reads the ledger's streams with stream info and
// direct gets only (the access config grants no CONSUMER.CREATE: a consumer's deliver subject is
// in the request body, which NATS permissions cannot see, so a reader that may create consumers
// could make the server deliver into the ledger's own subjects). One direct get request returns a
// batch of messages in stream order and an end-of-batch marker.
const (
	// directBatch is how many messages one direct get request asks for (the server also stops at
	// its byte limit and sends the end-of-batch marker early; the ledger caps an auditor's batch
	// at 1,000 and 4 MiB: the reading goes on from the last message received).
	directBatch = 1000
	// directWait bounds the wait for each message of a batch.
	directWait = 10 * time.Second
	// directRetries bounds the batches re-asked when a replica answers with nothing although the
	// range is not done (in a cluster any replica answers direct gets, and one may lag).
	directRetries   = 20
	directRetryWait = 100 * time.Millisecond
)

// errDirectBusy is the ledger's answer when its slots for auditors' reads are all taken and
// its queue is full: ask again later.
var errDirectBusy = errors.New("direct get answered 429: the ledger's reads for auditors are busy")

// directRequest is the body of a JetStream direct get ($JS.API.DIRECT.GET.<stream>).
type directRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch"`
	UpToSeq uint64 `json:"up_to_seq,omitempty"`
}

// consumeRange reads the messages of stream on subject from position first to last, in order,
// with batched direct gets on nc, and calls fn for each.
func consumeRange(ctx context.Context, nc *nats.Conn, stream jetstream.Stream, subject string, first, last uint64,
	fn func(Message) error, progress func(position, last uint64)) error {
	if first < 1 || first > last {
		return nil
	}
	name := stream.CachedInfo().Config.Name
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", name, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	next, empty, busy := first, 0, 0
	for next <= last {
		req, _ := json.Marshal(directRequest{Seq: next, NextFor: subject, Batch: directBatch, UpToSeq: last})
		if err := nc.PublishRequest("$JS.API.DIRECT.GET."+name, inbox, req); err != nil {
			return fmt.Errorf("read stream %s: %w", name, err)
		}
		n, done, err := readBatch(ctx, sub, name, last, &next, fn, progress)
		switch {
		case errors.Is(err, errDirectBusy):
			// The ledger serves auditors' reads a few at a time (auditread): ask again a little
			// later, a bounded number of times.
			if busy++; busy > directRetries {
				return err
			}
		case err != nil || done:
			return err
		case n > 0:
			empty, busy = 0, 0
			continue
		default:
			if empty++; empty > directRetries {
				return nil // nothing more on this subject up to last
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
	return nil
}

// readBatch reads one batch's messages up to its end-of-batch marker; done means last was read
// (or nothing is left on the subject).
func readBatch(ctx context.Context, sub *nats.Subscription, name string, last uint64, next *uint64,
	fn func(Message) error, progress func(position, last uint64)) (n int, done bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return n, false, err
		}
		// NextMsg takes a message already delivered without a timer; a context per message (a
		// timer each) cost the audit replay most of its speed.
		msg, err := sub.NextMsg(directWait)
		if err != nil {
			return n, false, fmt.Errorf("read stream %s: %w", name, err)
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			return n, false, nil
		case "404": // nothing at or after the position (yet, on a lagging replica)
			return n, false, nil
		case "429": // the ledger's reads for auditors are all taken (auditread)
			return n, false, fmt.Errorf("read stream %s: %w", name, errDirectBusy)
		default:
			return n, false, fmt.Errorf("read stream %s: direct get answered %s %s", name, status, msg.Header.Get("Description"))
		}
		m, err := directMessage(msg)
		if err != nil {
			return n, false, fmt.Errorf("read stream %s: %w", name, err)
		}
		if m.Position > last {
			return n, true, nil
		}
		n++
		if err := fn(m); err != nil {
			return n, false, err
		}
		if progress != nil {
			progress(m.Position, last)
		}
		*next = m.Position + 1
		if m.Position >= last {
			return n, true, nil
		}
	}
}

// directMessage reads a direct get answer's headers: position, subject and storage time.
func directMessage(msg *nats.Msg) (Message, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Message{}, errors.New("direct get answer without a sequence")
	}
	ts, err := time.Parse(time.RFC3339Nano, msg.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return Message{}, fmt.Errorf("direct get answer with a bad time stamp: %w", err)
	}
	// The headers are the stored message's, with the direct get's own (Nats-Stream, -Subject,
	// -Sequence, -Time-Stamp, and for a batch -Num-Pending, -Last-Sequence) added.
	return Message{Position: seq, Subject: msg.Header.Get(jetstream.SubjectHeader), Data: msg.Data, StoredAt: ts.UTC(), Header: msg.Header}, nil
}
