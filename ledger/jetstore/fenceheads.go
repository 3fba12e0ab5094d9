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
)

// Reading the fence heads of several partitions at once (ledger.Store.FenceHeads): one batched
// direct get with multi_last subjects ($JS.API.DIRECT.GET.<stream>, nats-server 2.11+), which
// answers with the last message of each subject that has one, then an end-of-batch status
// (204) that carries the position the answer was read at (Nats-UpTo-Sequence), or with 404 when
// none of the subjects has a message.
//
// The read must come after every ownership record stored before it began (the writer answers a
// rejection only if its partition's fence has not moved). A single server answers from its own
// store, so that holds. In a replicated stream any current replica answers a direct get, and
// one may lag: the stream leader's last position is read first (always: the replica count may
// have changed since the store cached it), and an answer read at an earlier position is asked
// again. An answer that cannot show where it was read (404), or a
// stream without direct gets, is read from the leader one partition at a time.
const (
	// maxMultiLast is how many subjects one multi_last request may name (nats-server answers
	// at most 1024 messages to one).
	maxMultiLast = 1024
	// statusEOB and statusNoResults are the direct get's end of batch and empty answer.
	statusEOB       = "204"
	statusNoResults = "404"
	// statusNoResponders: nobody serves the stream's direct gets yet (a stream just created, its
	// replicas not caught up: a cluster starting); asked again like a lagging replica's answer.
	statusNoResponders = "503"
	upToHeader         = "Nats-UpTo-Sequence"
	pendingHeader      = "Nats-Num-Pending"
)

// multiLastRequest is the body of a batched direct get of the last message of several subjects.
type multiLastRequest struct {
	MultiLast []string `json:"multi_last"`
}

// multiLastAnswer is one answer to a multi_last request: the sequence of the last message of
// each subject that has one, and the stream position it was read at.
type multiLastAnswer struct {
	last  map[string]uint64
	upTo  uint64
	empty bool // 404: none of the subjects has a message (at the answering replica)
	// foreign: another stream answered (a mirror that serves this stream's direct gets); its
	// answer says nothing of this stream's current state.
	foreign bool
	// unserved: nobody answered the direct get (statusNoResponders).
	unserved bool
}

// FenceHeads returns the position of the last ownership record of each partition in ps (0: it
// has none), in order, with one batched direct get (per 1024 partitions), read after every
// ownership record stored before the call began.
func (s *Store) FenceHeads(ctx context.Context, ps []int) ([]uint64, error) {
	out := make([]uint64, 0, len(ps))
	for start := 0; start < len(ps); start += maxMultiLast {
		heads, err := s.fenceHeads(ctx, ps[start:min(start+maxMultiLast, len(ps))])
		if err != nil {
			return nil, err
		}
		out = append(out, heads...)
	}
	return out, nil
}

// fenceHeads reads the fence heads of at most maxMultiLast partitions.
func (s *Store) fenceHeads(ctx context.Context, ps []int) ([]uint64, error) {
	cfg := s.stream.CachedInfo().Config
	if len(ps) == 0 {
		return nil, nil
	}
	if !cfg.AllowDirect {
		return s.leaderFenceHeads(ctx, cfg.Name, ps)
	}
	// The position an answer must have been read at: the leader's head, read on every call, not
	// only when the cached configuration says the stream is replicated (a stream scaled up
	// while the node runs would be trusted to one replica until the node restarts). On one
	// server it costs a stream info beside the round's append.
	floor, err := s.Head(ctx)
	if err != nil {
		return nil, err
	}
	subjects := make([]string, len(ps))
	for i, p := range ps {
		subjects[i] = FenceSubject(p)
	}
	for try := 0; ; try++ {
		a, err := s.multiLast(ctx, cfg.Name, subjects)
		if err != nil {
			return nil, fmt.Errorf("fence heads of %d partitions: %w", len(ps), err)
		}
		if a.empty {
			return s.leaderFenceHeads(ctx, cfg.Name, ps)
		}
		if !a.foreign && !a.unserved && a.upTo >= floor {
			heads := make([]uint64, len(ps))
			for i, subj := range subjects {
				heads[i] = a.last[subj]
			}
			return heads, nil
		}
		if try >= directRetries {
			return nil, fmt.Errorf("fence heads of %d partitions: no replica of the stream answered at position %d (last: %d, unserved: %v)", len(ps), floor, a.upTo, a.unserved)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
}

// multiLast sends one multi_last direct get and reads its answer up to the end of the batch.
func (s *Store) multiLast(ctx context.Context, stream string, subjects []string) (multiLastAnswer, error) {
	a := multiLastAnswer{last: make(map[string]uint64, len(subjects))}
	inbox := s.nc.NewInbox()
	answers, unsub, err := s.directInbox(inbox, len(subjects)+1) // a message per subject, then the end
	if err != nil {
		return a, err
	}
	defer unsub()
	req, err := json.Marshal(multiLastRequest{MultiLast: subjects})
	if err != nil {
		return a, err
	}
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, req); err != nil {
		return a, err
	}
	for n := 0; n <= len(subjects); n++ { // at most one message per subject, then the end of batch
		msg, err := nextDirect(ctx, answers)
		if err != nil {
			return a, err
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case statusNoResults:
			a.empty = true
			return a, nil
		case statusNoResponders:
			a.unserved = true
			return a, nil
		case statusEOB:
			if msg.Header.Get(pendingHeader) != "0" {
				return a, fmt.Errorf("direct get ended with %s messages pending", msg.Header.Get(pendingHeader))
			}
			if a.upTo, err = strconv.ParseUint(msg.Header.Get(upToHeader), 10, 64); err != nil {
				return a, fmt.Errorf("direct get's end of batch has no %s", upToHeader)
			}
			return a, nil
		default:
			return a, fmt.Errorf("direct get answered %s %s", status, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return a, errors.New("a direct get answer without a sequence")
		}
		if msg.Header.Get(jetstream.StreamHeader) != stream {
			a.foreign = true
		}
		a.last[msg.Header.Get(jetstream.SubjectHeader)] = seq
	}
	return a, fmt.Errorf("direct get answered more than the %d subjects asked", len(subjects))
}

// directInbox subscribes to the inbox a direct get answers on, into a channel that holds size
// messages (no more than the request can be answered with). A channel of the caller's size,
// not SubscribeSync's: that one allocates a channel of 65,536 messages per subscription,
// measured at about 0.4 ms a call, five times a direct get's round trip.
func (s *Store) directInbox(inbox string, size int) (<-chan *nats.Msg, func(), error) {
	ch := make(chan *nats.Msg, size)
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, nil, err
	}
	return ch, func() { _ = sub.Unsubscribe() }, nil
}

// nextDirect waits for the next message of a direct get's answer, within ctx and directWait.
func nextDirect(ctx context.Context, answers <-chan *nats.Msg) (*nats.Msg, error) {
	t := time.NewTimer(directWait)
	defer t.Stop()
	select {
	case msg := <-answers:
		return msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, nats.ErrTimeout
	}
}

// leaderFenceHeads reads the fence heads from the stream leader, one partition at a time (the
// leader's message get takes one subject).
func (s *Store) leaderFenceHeads(ctx context.Context, stream string, ps []int) ([]uint64, error) {
	heads := make([]uint64, len(ps))
	for i, p := range ps {
		seq, _, err := leaderLast(ctx, s.nc, stream, FenceSubject(p))
		if err != nil {
			return nil, fmt.Errorf("last ownership record of partition %d: %w", p, err)
		}
		heads[i] = seq
	}
	return heads, nil
}
