package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// Defaults of CheckpointConfig.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
	// checkpointDemandWait bounds how long an on-demand request waits for the publisher to
	// reach the stream head and sign.
	checkpointDemandWait = 10 * time.Second
	// checkpointBuffer bounds the messages queued between the consumer and the publisher.
	checkpointBuffer = 4096
)

// CheckpointConfig configures the signed checkpoint publisher (see package audit).
type CheckpointConfig struct {
	// KeyFile is the Ed25519 signing key (PKCS#8 PEM, mode 0600). Empty means
	// DataDir/checkpoint-ed25519.key, generated on first start with its .pub beside it; a
	// named file must exist.
	KeyFile string
	// Every signs a checkpoint once this many events follow the last one (default 1000;
	// negative: never by count).
	Every int
	// Interval signs a checkpoint this often when events follow the last one (default one
	// minute; negative: never by time).
	Interval time.Duration
	// Disabled turns the publisher off.
	Disabled bool
}

// startCheckpoints starts the publisher: it follows the LEDGER stream with its own ordered
// consumer, verifies every event's hash and chain link as it goes (it never signs a history it
// has not verified), and signs checkpoints into LEDGER_CHECKPOINTS every Every events, every
// Interval, on demand over ledger.audit.checkpoint, and once more on shutdown.
func (s *Server) startCheckpoints(ctx context.Context) error {
	cfg := s.cfg.Checkpoints
	if cfg.Disabled {
		return nil
	}
	keyFile, create := cfg.KeyFile, false
	if keyFile == "" {
		keyFile, create = filepath.Join(s.cfg.DataDir, audit.DefaultKeyFileName), true
	}
	key, created, err := audit.LoadOrCreateKey(keyFile, create)
	if err != nil {
		return err
	}
	log := s.cfg.Log.With().Str("component", "checkpoints").Logger()
	pub := key.Public().(ed25519.PublicKey)
	log.Info().Str("key_id", audit.KeyID(pub)).Str("key_file", keyFile).Bool("generated", created).Msg("checkpoint signing key")
	p, err := newCheckpointPublisher(ctx, s.store.JetStream(), s.cfg, key, log)
	if err != nil {
		return err
	}
	s.goRun(func() { p.run(ctx) })
	return p.register(ctx, s.svc)
}

type checkpointPublisher struct {
	js       jetstream.JetStream
	ledger   jetstream.Stream
	key      ed25519.PrivateKey
	clock    writer.Clock
	every    uint64
	interval time.Duration
	log      zerolog.Logger
	demand   chan checkpointDemand
	// startHead is the stream's head when the publisher started: it signs by count only once it
	// has verified that far, so catching up with a long history signs once, not once per Every.
	startHead uint64
	// Owned by the run goroutine.
	chain  *audit.Chain
	last   *audit.Checkpoint
	broken *audit.Finding
}

type checkpointDemand struct {
	target uint64
	reply  chan checkpointResult // buffered: the requester may have given up
}

type checkpointResult struct {
	cp  audit.Checkpoint
	err error
}

func newCheckpointPublisher(ctx context.Context, js jetstream.JetStream, cfg Config, key ed25519.PrivateKey, log zerolog.Logger) (*checkpointPublisher, error) {
	c := cfg.Checkpoints
	p := &checkpointPublisher{js: js, key: key, clock: cfg.Clock, log: log, chain: audit.NewChain(),
		demand: make(chan checkpointDemand), every: DefaultCheckpointEvery, interval: DefaultCheckpointInterval}
	if c.Every != 0 {
		p.every = uint64(max(c.Every, 0))
	}
	if c.Interval != 0 {
		p.interval = max(c.Interval, 0)
	}
	var err error
	if p.ledger, err = js.Stream(ctx, jetstore.StreamName); err != nil {
		return nil, fmt.Errorf("checkpoints: stream %s: %w", jetstore.StreamName, err)
	}
	p.startHead = p.ledger.CachedInfo().State.LastSeq
	st, err := js.Stream(ctx, audit.CheckpointStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, audit.CheckpointStreamConfig(cfg.Replicas))
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints: stream %s: %w", audit.CheckpointStream, err)
	}
	if c := st.CachedInfo().Config; c.Storage != jetstream.FileStorage || !c.DenyDelete || !c.DenyPurge || c.MaxAge != 0 {
		return nil, fmt.Errorf("stream %s must use file storage, deny_delete, deny_purge and no max_age; fix it with `nats stream edit %s`",
			audit.CheckpointStream, audit.CheckpointStream)
	}
	last, err := st.GetLastMsgForSubject(ctx, audit.CheckpointSubject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return nil, fmt.Errorf("checkpoints: last checkpoint: %w", err)
	default:
		cp, err := audit.ParseCheckpoint(last.Data)
		if err != nil || cp.Seq != last.Sequence {
			// Nothing can be chained onto it: serve, but sign nothing until an operator looks.
			p.broken = &audit.Finding{Kind: audit.KindCheckpointMalformed, Checkpoint: last.Sequence,
				Reason: fmt.Sprintf("the last message of %s (number %d) is not a sound checkpoint; run `creditledger audit verify`", audit.CheckpointStream, last.Sequence)}
			log.Error().Str("finding", p.broken.String()).Msg("no checkpoints will be signed")
		}
		p.last = &cp
	}
	return p, nil
}

// register serves on-demand checkpoints on ledger.audit.checkpoint. The handler answers before
// it returns (micro reads a request's outcome once its handler returns, so an answer sent later
// from another goroutine would race with that); requests are served one at a time, each bounded
// by checkpointDemandWait.
func (p *checkpointPublisher) register(ctx context.Context, svc micro.Service) error {
	if svc == nil {
		return errors.New("checkpoints: no micro service")
	}
	return svc.AddGroup("ledger.audit").AddEndpoint("checkpoint", micro.HandlerFunc(func(req micro.Request) {
		cp, err := p.onDemand(ctx)
		respondCheckpoint(req, cp, err)
	}))
}

func respondCheckpoint(req micro.Request, cp audit.Checkpoint, err error) {
	if err != nil {
		le := api.AsError(err)
		_ = req.Error(string(le.Code), le.Message, api.RejectedBody(le))
		return
	}
	b, _ := json.Marshal(cp)
	_ = req.Respond(b)
}

// onDemand asks the run loop to sign once it has verified the stream up to its current head.
func (p *checkpointPublisher) onDemand(ctx context.Context) (audit.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointDemandWait)
	defer cancel()
	info, err := p.ledger.Info(ctx)
	if err != nil {
		return audit.Checkpoint{}, ledger.Reject(ledger.CodeUnavailable, "stream info: %v", err)
	}
	d := checkpointDemand{target: info.State.LastSeq, reply: make(chan checkpointResult, 1)}
	select {
	case p.demand <- d:
	case <-ctx.Done():
		return audit.Checkpoint{}, ledger.Reject(ledger.CodeUnavailable, "checkpoint publisher is not running")
	}
	select {
	case r := <-d.reply:
		return r.cp, r.err
	case <-ctx.Done():
		return audit.Checkpoint{}, ledger.Reject(ledger.CodeUnavailable, "checkpoint publisher did not reach position %d within %s", d.target, checkpointDemandWait)
	}
}

// run follows the stream and signs until ctx ends, then signs what it verified since the last.
func (p *checkpointPublisher) run(ctx context.Context) {
	msgs := make(chan audit.Message, checkpointBuffer)
	cons, err := p.ledger.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{jetstore.SubjectAll}})
	if err == nil {
		var cc jetstream.ConsumeContext
		cc, err = cons.Consume(func(m jetstream.Msg) {
			md, merr := m.Metadata()
			if merr != nil {
				return
			}
			select {
			case msgs <- audit.Message{Position: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data(), StoredAt: md.Timestamp}:
			case <-ctx.Done():
			}
		}, jetstream.PullMaxMessages(checkpointBuffer))
		if err == nil {
			defer cc.Stop()
		}
	}
	if err != nil {
		p.log.Error().Err(err).Msg("checkpoint publisher cannot read the stream; no checkpoints will be signed")
		return
	}
	var tick <-chan time.Time
	if p.interval > 0 {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		tick = t.C
	}
	var waiting []checkpointDemand
	for {
		select {
		case <-ctx.Done():
			p.answer(waiting, audit.Checkpoint{}, ledger.Reject(ledger.CodeUnavailable, "ledger is shutting down"))
			if p.due(1) {
				p.sign(context.Background())
			}
			return
		case m := <-msgs:
			p.apply(m)
			if p.chain.Position() >= p.startHead && p.due(p.every) {
				p.sign(ctx)
			}
		case <-tick:
			if p.due(1) {
				p.sign(ctx)
			}
		case d := <-p.demand:
			waiting = append(waiting, d)
		}
		waiting = p.serve(ctx, waiting)
	}
}

// due reports whether at least n verified events follow the last checkpoint (n 0: never).
func (p *checkpointPublisher) due(n uint64) bool {
	if n == 0 || p.broken != nil {
		return false
	}
	var lastPos uint64
	if p.last != nil {
		lastPos = p.last.Position
	}
	return p.chain.Position() >= lastPos+n
}

// apply verifies one message. Reaching the last stored checkpoint's position, it also checks
// that the stream still matches what this ledger signed before.
func (p *checkpointPublisher) apply(m audit.Message) {
	if m.Position <= p.chain.Position() {
		return
	}
	fs := p.chain.Apply(m)
	if len(fs) > 0 && p.broken == nil {
		p.broken = &fs[0]
		p.log.Error().Str("finding", fs[0].String()).Msg("the LEDGER stream fails verification; no further checkpoints will be signed")
	}
	if p.last != nil && p.broken == nil && m.Position == p.last.Position &&
		(p.chain.AccountsRoot() != p.last.AccountsRoot || p.chain.LogDigest() != p.last.LogDigest) {
		p.broken = &audit.Finding{Kind: audit.KindCheckpointMismatch, Position: m.Position, Checkpoint: p.last.Seq,
			Reason: fmt.Sprintf("the history up to position %d no longer matches checkpoint %d", m.Position, p.last.Seq)}
		p.log.Error().Str("finding", p.broken.String()).Msg("the LEDGER stream was altered since it was signed; no further checkpoints will be signed")
	}
}

// serve signs once for every waiting request whose target the chain has reached.
func (p *checkpointPublisher) serve(ctx context.Context, waiting []checkpointDemand) []checkpointDemand {
	if len(waiting) == 0 {
		return waiting
	}
	if p.broken != nil {
		p.answer(waiting, audit.Checkpoint{}, ledger.Reject(ledger.CodeInternal, "the ledger history fails verification, so it is not signed: %s", p.broken))
		return nil
	}
	var ready, rest []checkpointDemand
	for _, d := range waiting {
		if p.chain.Position() >= d.target {
			ready = append(ready, d)
		} else {
			rest = append(rest, d)
		}
	}
	if len(ready) > 0 {
		cp, err := p.sign(ctx)
		p.answer(ready, cp, err)
	}
	return rest
}

func (p *checkpointPublisher) answer(ds []checkpointDemand, cp audit.Checkpoint, err error) {
	for _, d := range ds {
		d.reply <- checkpointResult{cp: cp, err: err}
	}
}

// sign signs the chain's state as the next checkpoint and stores it; the expected-last-sequence
// check keeps checkpoint numbers equal to stream sequences.
func (p *checkpointPublisher) sign(ctx context.Context) (audit.Checkpoint, error) {
	cp := audit.NewCheckpoint(p.last, p.chain, p.clock.Now(), p.key)
	data, err := json.Marshal(cp)
	if err != nil {
		return cp, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.js.Publish(ctx, audit.CheckpointSubject, data, jetstream.WithExpectLastSequence(cp.Seq-1)); err != nil {
		p.log.Error().Err(err).Uint64("seq", cp.Seq).Msg("store checkpoint")
		return cp, ledger.Reject(ledger.CodeUnavailable, "store checkpoint %d: %v", cp.Seq, err)
	}
	p.last = &cp
	p.log.Debug().Uint64("seq", cp.Seq).Uint64("position", cp.Position).Str("accounts_root", cp.AccountsRoot).Msg("checkpoint signed")
	return cp, nil
}
