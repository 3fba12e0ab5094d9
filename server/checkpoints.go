package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/microsvc"
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
	// checkpointResyncMax bounds the restarts in a row after another signer's checkpoint (or
	// a lost race) moved the checkpoint stream under the publisher; it then stops signing.
	checkpointResyncMax = 10
	// wrongLastSequence is JetStream's API error code for a failed expected-last-sequence.
	wrongLastSequence = 10071
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
	// Origin is the checkpoints' origin line and signing key name (default audit.DefaultOrigin).
	Origin string
	// Signer says whether this node signs checkpoints now; nil means always. It is the hook a
	// cluster wires to its choice of one signer (a partition lease, the stream leader): a node
	// it says no to follows and verifies the stream but signs nothing, and answers checkpoint
	// requests with unavailable. A node that becomes the signer re-reads the checkpoint stream
	// before it signs (a publish that finds another signer's checkpoint makes it start over).
	Signer func() bool
	// Disabled turns the publisher off.
	Disabled bool
}

// startCheckpoints starts the publisher: it follows the LEDGER stream with its own ordered
// consumer (a new one, from where it is, each time the store connection reconnects), verifies
// every event's hash and chain link (and every partition ownership record) as it goes (it never
// signs a history it has not verified), and signs checkpoints into LEDGER_CHECKPOINTS every
// Every events, every Interval, on demand over ledger.audit.checkpoint, and once more on
// shutdown; never two for one stream head, and each only once an RFC 6962 consistency proof from
// the last one verifies.
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
	p, err := newCheckpointPublisher(ctx, s.store.JetStream(), s.cfg, key, log)
	if err != nil {
		return err
	}
	p.again = s.reconnected.checkpoints
	if create { // the data directory's key: publish the verifier key beside it, once
		if err := audit.WriteVerifierKey(audit.VerifierKeyFile(keyFile), p.vkey); err != nil {
			return err
		}
	}
	log.Info().Str("key_id", audit.KeyID(key.Public().(ed25519.PublicKey))).Str("verifier_key", p.vkey).
		Str("key_file", keyFile).Bool("generated", created).Msg("checkpoint signing key")
	s.goRun(func() { p.run(ctx) })
	return p.register(ctx, s.guarded)
}

type checkpointPublisher struct {
	js       jetstream.JetStream
	ledger   jetstream.Stream
	key      ed25519.PrivateKey
	origin   string
	vkey     string
	signer   func() bool
	clock    writer.Clock
	every    uint64
	interval time.Duration
	log      zerolog.Logger
	demand   chan checkpointDemand
	// subjects are the LEDGER stream's event subjects, under which every event must be stored,
	// and its partition count, which every ownership record names.
	subjects jetstore.Subjects
	// signs counts the checkpoints stored; owned by the run goroutine, as are the rest.
	signs int
	// carried holds the requests a restart of follow takes over from the one before.
	carried []checkpointDemand
	// again is signalled when the store connection reconnects (nil: never): the publisher then
	// follows on from its chain's position with a new consumer (follow).
	again <-chan struct{}
	// left counts the consumers left at a reconnect, still stopping; run waits for them.
	left sync.WaitGroup
	// Reset at each (re)start of follow.
	chain  *audit.Chain
	last   *lastCheckpoint
	broken *audit.Finding
}

// lastCheckpoint is the newest checkpoint in the stream, in either format.
type lastCheckpoint struct {
	seq      uint64
	position uint64
	v1       *audit.Checkpoint
	v2       *audit.LogCheckpoint
	// stored is the message as stored: what an on-demand request is answered with.
	stored []byte
}

type checkpointDemand struct {
	target uint64
	reply  chan checkpointResult // buffered: the requester may have given up
}

type checkpointResult struct {
	stored []byte
	err    error
}

// errResync means the checkpoint stream moved under the publisher: it starts over.
var errResync = errors.New("checkpoint stream moved under the publisher")

func newCheckpointPublisher(ctx context.Context, js jetstream.JetStream, cfg Config, key ed25519.PrivateKey, log zerolog.Logger) (*checkpointPublisher, error) {
	c := cfg.Checkpoints
	p := &checkpointPublisher{js: js, key: key, clock: cfg.Clock, log: log, origin: c.Origin, signer: c.Signer,
		demand: make(chan checkpointDemand), every: DefaultCheckpointEvery, interval: DefaultCheckpointInterval}
	if p.origin == "" {
		p.origin = audit.DefaultOrigin
	}
	if p.signer == nil {
		p.signer = func() bool { return true }
	}
	if c.Every != 0 {
		p.every = uint64(max(c.Every, 0))
	}
	if c.Interval != 0 {
		p.interval = max(c.Interval, 0)
	}
	var err error
	if p.vkey, err = audit.VerifierKey(p.origin, key.Public().(ed25519.PublicKey)); err != nil {
		return nil, fmt.Errorf("checkpoints: origin %q: %w", p.origin, err)
	}
	if p.ledger, err = js.Stream(ctx, jetstore.StreamName); err != nil {
		return nil, fmt.Errorf("checkpoints: stream %s: %w", jetstore.StreamName, err)
	}
	if p.subjects, err = jetstore.SubjectsOf(p.ledger.CachedInfo().Config); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
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
	return p, nil
}

// loadLast reads the newest stored checkpoint. One that is not sound makes the publisher sign
// nothing until an operator looks (the finding says so); nothing can be chained onto it.
func (p *checkpointPublisher) loadLast(ctx context.Context) (*lastCheckpoint, *audit.Finding, error) {
	st, err := p.js.Stream(ctx, audit.CheckpointStream)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: stream %s: %w", audit.CheckpointStream, err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, audit.CheckpointSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: last checkpoint: %w", err)
	}
	sc := audit.ParseStoredCheckpoint(msg.Sequence, msg.Data)
	if sc.Err == nil && sc.Log == nil && sc.Checkpoint.Seq != msg.Sequence {
		sc.Err = fmt.Errorf("numbered %d", sc.Checkpoint.Seq)
	}
	if sc.Err != nil {
		return nil, &audit.Finding{Kind: audit.KindCheckpointMalformed, Checkpoint: msg.Sequence,
			Reason: fmt.Sprintf("the last message of %s (number %d) is not a sound checkpoint (%v); run `creditledger audit verify`",
				audit.CheckpointStream, msg.Sequence, sc.Err)}, nil
	}
	last := &lastCheckpoint{seq: msg.Sequence, position: sc.Position(), v2: sc.Log, stored: msg.Data}
	if sc.Log == nil {
		last.v1 = &sc.Checkpoint
	}
	return last, nil, nil
}

// register serves on-demand checkpoints on ledger.audit.checkpoint. The handler answers before
// it returns: the publisher signs one checkpoint at a time anyway, so requests are served one at
// a time, each bounded by checkpointDemandWait. Messages that are not requests of its own get no
// answer at all.
func (p *checkpointPublisher) register(ctx context.Context, svc microsvc.Group) error {
	if svc == nil {
		return errors.New("checkpoints: no micro service")
	}
	return svc.AddGroup("ledger.audit").AddEndpoint("checkpoint", micro.HandlerFunc(func(req micro.Request) {
		if why := notACheckpointRequest(req.Reply(), req.Data()); why != "" {
			p.log.Debug().Str("reply", req.Reply()).Str("why", why).Msg("ignored a message on the checkpoint request subject")
			return
		}
		stored, err := p.onDemand(ctx)
		respondCheckpoint(req, stored, err)
	}))
}

// notACheckpointRequest says why a message on the request subject is not a checkpoint request
// ("" when it is one): a request has a reply subject that is not JetStream's own (a message a
// consumer delivers there, for one, has none or a $JS.ACK one), and an empty or {} body.
func notACheckpointRequest(reply string, body []byte) string {
	switch b := bytes.TrimSpace(body); {
	case reply == "":
		return "no reply subject"
	case strings.HasPrefix(reply, "$JS."):
		return "a JetStream delivery, not a request"
	case len(b) > 0 && !bytes.Equal(b, []byte("{}")):
		return "a body other than empty or {}"
	}
	return ""
}

func respondCheckpoint(req micro.Request, stored []byte, err error) {
	if err != nil {
		le := api.AsError(err)
		_ = req.Error(string(le.Code), le.Message, api.RejectedBody(le))
		return
	}
	_ = req.Respond(stored)
}

// onDemand asks the run loop for a checkpoint of the stream up to its current head.
func (p *checkpointPublisher) onDemand(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointDemandWait)
	defer cancel()
	// The leader's head: a replica without a leader answers from its own store, which may lack
	// the caller's last write, and the checkpoint would not cover it.
	info, err := jetstore.LeaderInfo(ctx, p.ledger)
	if err != nil {
		return nil, ledger.Reject(ledger.CodeUnavailable, "stream info: %v", err)
	}
	d := checkpointDemand{target: info.State.LastSeq, reply: make(chan checkpointResult, 1)}
	select {
	case p.demand <- d:
	case <-ctx.Done():
		return nil, ledger.Reject(ledger.CodeUnavailable, "checkpoint publisher is not running")
	}
	select {
	case r := <-d.reply:
		return r.stored, r.err
	case <-ctx.Done():
		return nil, ledger.Reject(ledger.CodeUnavailable, "checkpoint publisher did not reach position %d within %s", d.target, checkpointDemandWait)
	}
}

// run follows the stream and signs until ctx ends; it starts over (a bounded number of times
// in a row) when the checkpoint stream moved under it.
func (p *checkpointPublisher) run(ctx context.Context) {
	defer p.left.Wait()
	defer func() {
		p.answer(p.carried, nil, ledger.Reject(ledger.CodeUnavailable, "checkpoint publisher stopped"))
		p.carried = nil
	}()
	for resyncs := 1; ; resyncs++ {
		before := p.signs
		err := p.follow(ctx)
		if p.signs > before {
			resyncs = 1
		}
		switch {
		case ctx.Err() != nil:
			return
		case !errors.Is(err, errResync):
			p.log.Error().Err(err).Msg("checkpoint publisher stopped; no checkpoints will be signed")
			return
		case resyncs >= checkpointResyncMax:
			p.log.Error().Int("restarts", resyncs).Msg("the checkpoint stream keeps moving under this publisher; no checkpoints will be signed")
			return
		}
		p.log.Info().Msg("another checkpoint was stored meanwhile; re-reading the streams")
	}
}

// follow reads the last checkpoint, then the stream from its start, verifying and signing. A
// reconnect signalled on again leaves the consumer and follows on with a new one from the chain's
// position: nats.go's own consumer, after a connection that stalled and was cut, waits for the
// request it sent into the stall to time out (10 s) before it asks again. The verified chain, the
// log tree and the waiting requests carry over. It returns errResync when the checkpoint stream
// moved under it.
func (p *checkpointPublisher) follow(ctx context.Context) error {
	last, broken, err := p.loadLast(ctx)
	if err != nil {
		return err
	}
	p.chain, p.last, p.broken = audit.NewChain(), last, broken
	p.chain.SetSubjects(p.subjects)
	if broken != nil {
		p.log.Error().Str("finding", broken.String()).Msg("no checkpoints will be signed")
	}
	info, err := jetstore.LeaderInfo(ctx, p.ledger)
	if err != nil {
		return fmt.Errorf("checkpoints: stream %s: %w", jetstore.StreamName, err)
	}
	// The publisher signs by count only once it has verified up to the head it started at, so
	// catching up with a long history signs once, not once per Every.
	startHead := info.State.LastSeq
	waiting := p.carried
	p.carried = nil
	feed, err := p.consume(ctx, 1)
	if err != nil {
		return p.stopped(ctx, waiting, err)
	}
	defer func() { feed.stop() }() // the feed of the moment
	var tick <-chan time.Time
	if p.interval > 0 {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		err = nil
		select {
		case <-ctx.Done():
			return p.stopped(ctx, waiting, ctx.Err())
		case m := <-feed.msgs:
			p.apply(m)
			if p.chain.Position() >= startHead && p.due(p.every) {
				_, err = p.sign(ctx)
			}
		case <-p.again:
			feed.leave(&p.left)
			if feed, err = p.consume(ctx, p.chain.Position()+1); err != nil {
				return p.stopped(ctx, waiting, err)
			}
			p.log.Info().Uint64("position", p.chain.Position()).Msg("checkpoint publisher follows the stream again after a reconnect")
		case <-tick:
			if p.due(1) {
				_, err = p.sign(ctx)
			}
		case d := <-p.demand:
			waiting = append(waiting, d)
		}
		if err == nil {
			waiting, err = p.serve(ctx, waiting)
		}
		if errors.Is(err, errResync) {
			p.carried = waiting // served once the publisher has caught up again
			return err
		}
	}
}

// stopped ends follow with err: at ctx's end it answers the waiting requests and signs the
// head once more; otherwise run answers them (carried) as it stops.
func (p *checkpointPublisher) stopped(ctx context.Context, waiting []checkpointDemand, err error) error {
	if ctx.Err() == nil {
		p.carried = waiting
		return err
	}
	p.answer(waiting, nil, ledger.Reject(ledger.CodeUnavailable, "ledger is shutting down"))
	if p.due(1) {
		_, _ = p.sign(context.Background())
	}
	return ctx.Err()
}

// due reports whether this node signs and at least n verified events follow the last
// checkpoint (n 0: never). n >= 1 means the stream head moved since the last checkpoint.
func (p *checkpointPublisher) due(n uint64) bool {
	if n == 0 || p.broken != nil || !p.signer() {
		return false
	}
	var lastPos uint64
	if p.last != nil {
		lastPos = p.last.position
	}
	return p.chain.Position() >= lastPos+n
}

// apply verifies one message. Reaching the last stored checkpoint's position, it also checks
// that the stream still matches what was signed there, and marks the log tree there so that
// the next checkpoint is proved consistent with it.
func (p *checkpointPublisher) apply(m audit.Message) {
	if m.Position <= p.chain.Position() {
		return
	}
	fs := p.chain.Apply(m)
	if len(fs) > 0 && p.broken == nil {
		p.broken = &fs[0]
		p.log.Error().Str("finding", fs[0].String()).Msg("the LEDGER stream fails verification; no further checkpoints will be signed")
	}
	if p.last == nil || p.broken != nil || m.Position != p.last.position {
		return
	}
	tree := p.chain.Tree()
	var differs bool
	if v2 := p.last.v2; v2 != nil {
		differs = tree.Size() != v2.Size || tree.Root() != v2.Root
	} else {
		differs = p.chain.AccountsRoot() != p.last.v1.AccountsRoot || p.chain.LogDigest() != p.last.v1.LogDigest
	}
	if differs {
		p.broken = &audit.Finding{Kind: audit.KindCheckpointMismatch, Position: m.Position, Checkpoint: p.last.seq,
			Reason: fmt.Sprintf("the history up to position %d no longer matches checkpoint %d", m.Position, p.last.seq)}
		p.log.Error().Str("finding", p.broken.String()).Msg("the LEDGER stream was altered since it was signed; no further checkpoints will be signed")
		return
	}
	tree.Mark()
}

// serve answers every waiting request whose target the chain has reached: with the last
// checkpoint when the stream head has not moved since it, else with one new checkpoint for all.
func (p *checkpointPublisher) serve(ctx context.Context, waiting []checkpointDemand) ([]checkpointDemand, error) {
	if len(waiting) == 0 {
		return waiting, nil
	}
	if p.broken != nil {
		p.answer(waiting, nil, ledger.Reject(ledger.CodeInternal, "the ledger history fails verification, so it is not signed: %s", p.broken))
		return nil, nil
	}
	if !p.signer() {
		p.answer(waiting, nil, ledger.Reject(ledger.CodeUnavailable, "this node does not sign checkpoints now; retry"))
		return nil, nil
	}
	var ready, rest []checkpointDemand
	for _, d := range waiting {
		if p.chain.Position() >= d.target {
			ready = append(ready, d)
		} else {
			rest = append(rest, d)
		}
	}
	if len(ready) == 0 {
		return rest, nil
	}
	if p.last != nil && p.last.v2 != nil && p.chain.Position() == p.last.position {
		p.answer(ready, p.last.stored, nil) // the head has not moved: nothing new to sign
		return rest, nil
	}
	stored, err := p.sign(ctx)
	if errors.Is(err, errResync) {
		return waiting, err
	}
	p.answer(ready, stored, err)
	return rest, err
}

func (p *checkpointPublisher) answer(ds []checkpointDemand, stored []byte, err error) {
	for _, d := range ds {
		d.reply <- checkpointResult{stored: stored, err: err}
	}
}

// sign proves the tree at the chain's head consistent with the last checkpoint's, signs it as
// the next checkpoint and stores it; the expected-last-sequence check keeps checkpoint numbers
// equal to stream sequences and tells when another signer stored one meanwhile (errResync).
func (p *checkpointPublisher) sign(ctx context.Context) ([]byte, error) {
	tree := p.chain.Tree()
	size, root := tree.Size(), tree.Root()
	if size != p.chain.Position() {
		return nil, ledger.Reject(ledger.CodeInternal, "the log tree holds %d messages at position %d", size, p.chain.Position())
	}
	if err := p.checkConsistent(size, root); err != nil {
		return nil, err
	}
	note, err := audit.SignLogCheckpoint(p.origin, size, root, p.key)
	if err != nil {
		return nil, ledger.Reject(ledger.CodeInternal, "sign checkpoint: %v", err)
	}
	var seq uint64 = 1
	if p.last != nil {
		seq = p.last.seq + 1
	}
	msg := nats.NewMsg(audit.CheckpointSubject)
	msg.Data = note
	msg.Header.Set(audit.VerifierKeyHeader, p.vkey)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequence(seq-1)); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == wrongLastSequence {
			return nil, errResync
		}
		p.log.Error().Err(err).Uint64("seq", seq).Msg("store checkpoint")
		return nil, ledger.Reject(ledger.CodeUnavailable, "store checkpoint %d: %v", seq, err)
	}
	p.signs++
	p.last = &lastCheckpoint{seq: seq, position: size, stored: note,
		v2: &audit.LogCheckpoint{Origin: p.origin, Size: size, Root: root, Note: note}}
	tree.Mark()
	p.log.Debug().Uint64("seq", seq).Uint64("size", size).Str("root", fmt.Sprintf("%x", root)).Msg("checkpoint signed")
	return note, nil
}

// checkConsistent verifies an RFC 6962 consistency proof from the last format-2 checkpoint's
// signed root to root; the tree was marked at that checkpoint's size. A failure stops signing.
func (p *checkpointPublisher) checkConsistent(size uint64, root [32]byte) error {
	if p.last == nil || p.last.v2 == nil {
		return nil // the first checkpoint, or the first after format-1 ones (checked in apply)
	}
	prev, tree := p.last.v2, p.chain.Tree()
	if m, ok := tree.Marked(); !ok || m != prev.Size {
		return ledger.Reject(ledger.CodeUnavailable, "the publisher has not reached checkpoint %d's size %d", p.last.seq, prev.Size)
	}
	proof, err := tree.ConsistencyProof(prev.Size)
	if err == nil {
		err = audit.VerifyLogConsistency(prev.Size, size, proof, prev.Root, root)
	}
	if err != nil {
		p.broken = &audit.Finding{Kind: audit.KindCheckpointInconsistent, Position: size, Checkpoint: p.last.seq,
			Reason: fmt.Sprintf("the tree at size %d does not extend checkpoint %d (size %d): %v", size, p.last.seq, prev.Size, err)}
		p.log.Error().Str("finding", p.broken.String()).Msg("no further checkpoints will be signed")
		return ledger.Reject(ledger.CodeInternal, "%s", p.broken)
	}
	return nil
}
