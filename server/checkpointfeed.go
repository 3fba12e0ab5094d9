package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/audit"
)

// The pauses between requests for the checkpoint publisher's consumer while the store cannot
// make it (as the projector's).
const (
	checkpointConsumerRetryFirst = 100 * time.Millisecond
	checkpointConsumerRetryMax   = 2 * time.Second
)

// checkpointFeed is one ordered consumer of the LEDGER stream and the channel it feeds, its own:
// what a consumer left at a reconnect still delivers never reaches the chain, where a message
// read after the next consumer's could look like a gap and mark the history broken.
type checkpointFeed struct {
	msgs   <-chan audit.Message
	cancel context.CancelFunc
	cc     jetstream.ConsumeContext
}

// consume starts an ordered consumer over the whole LEDGER stream from position start: every
// subject (events and partition ownership records), since the log tree covers every stored
// message. A consumer the store cannot make yet is asked for again (orderedConsumer); the error
// is ctx's, or a consume the client refuses.
func (p *checkpointPublisher) consume(ctx context.Context, start uint64) (*checkpointFeed, error) {
	cfg := jetstream.OrderedConsumerConfig{}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := p.orderedConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	msgs := make(chan audit.Message, checkpointBuffer)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, merr := m.Metadata()
		if merr != nil {
			return
		}
		select {
		case msgs <- audit.Message{Position: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data(), StoredAt: md.Timestamp}:
		case <-fctx.Done():
		}
	}, jetstream.PullMaxMessages(checkpointBuffer), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second)) // as the projector's
	if err != nil {
		cancel()
		return nil, fmt.Errorf("checkpoints: consume: %w", err)
	}
	return &checkpointFeed{msgs: msgs, cancel: cancel, cc: cc}, nil
}

// orderedConsumer makes the publisher's consumer, asking again until it is made or ctx ends.
// Making it is a JetStream API request: right after a reconnect the store can be unable to
// answer for a while (a nats-server still starting, a stream electing its leader), and a refusal
// then must not stop the publisher for good. A reconnect signalled meanwhile asks again at once.
func (p *checkpointPublisher) orderedConsumer(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	pause := checkpointConsumerRetryFirst
	for {
		cons, err := p.ledger.OrderedConsumer(ctx, cfg)
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("checkpoints: consumer: %w", err)
		}
		p.log.Warn().Err(err).Uint64("start", cfg.OptStartSeq).Dur("retry_in", pause).
			Msg("checkpoint publisher cannot follow the stream yet; asking again")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("checkpoints: consumer: %w", ctx.Err())
		case <-p.again:
		case <-time.After(pause):
		}
		pause = min(2*pause, checkpointConsumerRetryMax)
	}
}

// stop stops the consumer and waits until it has; a nil feed (none made) has nothing to stop.
func (f *checkpointFeed) stop() {
	if f == nil {
		return
	}
	f.cancel()
	f.cc.Stop()
	<-f.cc.Closed()
}

// leave stops the consumer beside, counted in left: after a stall, nats.go's stop waits for the
// consumer's lock, held by its own reset until the request it sent into the stall times out.
// Nothing it delivers meanwhile is read.
func (f *checkpointFeed) leave(left *sync.WaitGroup) {
	f.cancel()
	left.Add(1)
	go func() {
		defer left.Done()
		f.cc.Stop()
		<-f.cc.Closed()
	}()
}
