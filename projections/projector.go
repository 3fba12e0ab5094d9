package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// maxParked bounds how many undecodable messages the projector remembers.
const maxParked = 1000

// Parked is a stream message the projector could not apply.
type Parked struct {
	Position  uint64 `json:"position"`
	AccountID string `json:"account_id"`
	Reason    string `json:"reason"`
}

// Projector is the in-memory read model of every account, kept current from the stream.
type Projector struct {
	log      zerolog.Logger
	mu       sync.RWMutex
	accounts map[string]ledger.Account
	// ids is every account id in accounts, sorted: the fleet views page through it (fleet.go).
	ids      []string
	position uint64
	// dirty are the accounts changed since the last fleet query; fleet caches their rows
	// (fleet_cache.go).
	dirty map[string]struct{}
	fleet fleetCache
	// waiters are the WaitFor calls, woken when the position reaches theirs (waiters.go).
	waiters  positionWaiters
	parked   []Parked
	parkedN  int
	watchers map[string]map[chan uint64]struct{}
	// Checkpoints (snapshot.go); used only by the Run goroutine.
	snaps     SnapshotStore
	snapEvery uint64
	snapAt    uint64
	saving    chan struct{}
	// broken, when set, hears of the first message parked on each account (reported lists them).
	broken   BrokenHook
	reported map[string]struct{}
}

// ErrNotAccountSubject is why the projector parks a message filed under a subject that is not
// where the store files its account's events (another partition's, or the other scheme's). It
// is not reported to the BrokenHook: the account's own subject, the only one its writer reads,
// holds no break (audit verify reports the message, wrong_subject).
var ErrNotAccountSubject = errors.New("not the account's subject")

// BrokenHook is told of a message the projector parked on an account's subject: the account's
// stored history does not continue there. It is called once per account, under the projector's
// lock, so it must not block (the server hands it to the writer: writer.MarkBroken).
type BrokenHook func(accountID string, position uint64, reason string)

// Option configures a Projector.
type Option func(*Projector)

// WithBrokenHook makes the projector call hook for the first message it parks on each account.
func WithBrokenHook(hook BrokenHook) Option {
	return func(p *Projector) { p.broken = hook }
}

// NewProjector returns an empty projector.
func NewProjector(log zerolog.Logger, opts ...Option) *Projector {
	p := &Projector{log: log, accounts: map[string]ledger.Account{}, reported: map[string]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Position is the last stream position applied.
func (p *Projector) Position() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.position
}

// Apply folds one stored message in. Messages at or below the applied position are ignored, which
// makes redelivery harmless; undecodable or out-of-order messages are parked and reported.
func (p *Projector) Apply(position uint64, accountID string, data []byte) {
	ev, err := events.Decode(data)
	p.ApplyDecoded(position, accountID, ev, err)
}

// ApplyDecoded is Apply for a message decoded elsewhere (decoding needs no lock, so a feeder can
// decode on one core while the projector folds on another); decodeErr parks the message.
func (p *Projector) ApplyDecoded(position uint64, accountID string, ev events.Event, decodeErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if position <= p.position {
		return
	}
	p.position = position
	defer p.notify()
	err := decodeErr
	if err == nil {
		a, ok := p.accounts[accountID]
		if !ok {
			a = ledger.NewAccount(accountID)
		}
		if ev.AccountID != accountID || ev.Version != a.Version+1 {
			err = fmt.Errorf("event for %s version %d does not follow %s version %d", ev.AccountID, ev.Version, accountID, a.Version)
		} else {
			ev.Position = position
			if !ok {
				p.ids = insertSorted(p.ids, accountID)
			}
			p.accounts[accountID] = ledger.Evolve(a, ev)
			p.markDirty(accountID)
			for ch := range p.watchers[accountID] {
				select {
				case ch <- position:
				default: // the watcher has a wake-up pending; it reads the newest state anyway
				}
			}
			return
		}
	}
	if !errors.Is(err, ErrNotAccountSubject) {
		p.reportBroken(position, accountID, err)
	}
	p.parkedN++
	if len(p.parked) < maxParked {
		p.parked = append(p.parked, Parked{Position: position, AccountID: accountID, Reason: err.Error()})
	}
	p.log.Error().Uint64("position", position).Str("account_id", accountID).Err(err).Msg("projector parked a message")
}

// reportBroken calls the broken hook for the first message parked on the account. It runs
// before the parked count moves, so whoever sees the count has the report already handed over.
func (p *Projector) reportBroken(position uint64, accountID string, err error) {
	if p.broken == nil {
		return
	}
	if _, done := p.reported[accountID]; done {
		return
	}
	p.reported[accountID] = struct{}{}
	p.broken(accountID, position, err.Error())
}

// Pass moves the projector past a stream position that holds no event (a partition ownership
// record): min_position waits and lag see it applied, and no account changes.
func (p *Projector) Pass(position uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if position <= p.position {
		return
	}
	p.position = position
	p.notify()
}

// notify wakes the WaitFor calls the position has reached; the caller holds the write lock.
func (p *Projector) notify() { p.waiters.reached(p.position) }

// Watch returns a channel that receives a position each time an event of the account is applied
// (coalesced: a slow reader gets one wake-up, not a backlog), and a func that stops the watch.
func (p *Projector) Watch(accountID string) (<-chan uint64, func()) {
	ch := make(chan uint64, 1)
	p.mu.Lock()
	if p.watchers == nil {
		p.watchers = map[string]map[chan uint64]struct{}{}
	}
	if p.watchers[accountID] == nil {
		p.watchers[accountID] = map[chan uint64]struct{}{}
	}
	p.watchers[accountID][ch] = struct{}{}
	p.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.watchers[accountID], ch)
			if len(p.watchers[accountID]) == 0 {
				delete(p.watchers, accountID)
			}
			p.mu.Unlock()
		})
	}
}

// ParkedMessages reports the messages the projector could not apply (at most maxParked) and
// their total count.
func (p *Projector) ParkedMessages() ([]Parked, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]Parked(nil), p.parked...), p.parkedN
}

// WaitFor blocks until the projector has applied position, or ctx ends.
func (p *Projector) WaitFor(ctx context.Context, position uint64) error {
	p.mu.RLock()
	if p.position >= position {
		p.mu.RUnlock()
		return nil
	}
	// Registered under the read lock: the position cannot move past ours before we are in.
	w := p.waiters.add(position)
	p.mu.RUnlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		p.waiters.remove(w)
		return ctx.Err()
	}
}

// view runs f on an account's state under the read lock; ok is false for an unknown account.
func (p *Projector) view(accountID string, f func(a ledger.Account, position uint64)) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	a, ok := p.accounts[accountID]
	if ok {
		f(a, p.position)
	}
	return ok
}

// Accounts returns the number of accounts projected.
func (p *Projector) Accounts() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.accounts)
}

// Run feeds the projector from the LEDGER stream, starting after its current position, until
// ctx ends. The ordered consumer recovers from gaps and reconnects by itself; a signal on again
// (nil: none; the server sends one when the stream's connection reconnects) makes Run follow the
// stream at once with a new consumer instead: nats.go's consumer, after a connection that
// stalled and was cut, waits for the request it sent into the stall to time out (10 s) before
// it asks again (TestProjectorFollowsAgainAfterACutConnection measured 9 s behind).
func (p *Projector) Run(ctx context.Context, stream jetstream.Stream, again <-chan struct{}) error {
	subjects, err := jetstore.SubjectsOf(stream.CachedInfo().Config)
	if err != nil {
		return err
	}
	// Consumers left on a reconnect: each stops once nats.go's own reset returns (it holds the
	// consumer's lock for its request), which Run waits for before it returns.
	var left sync.WaitGroup
	defer left.Wait()
	for {
		followAgain, err := p.follow(ctx, stream, subjects, again, &left)
		if err != nil {
			return err
		}
		if !followAgain {
			break
		}
		p.log.Info().Uint64("position", p.Position()).Msg("projector follows the stream again after a reconnect")
	}
	p.maybeCheckpoint(ctx, true)
	return nil
}

// follow feeds the projector through one ordered consumer until ctx ends (false) or again is
// signalled (true: the consumer is left to stop beside, counted in left).
func (p *Projector) follow(ctx context.Context, stream jetstream.Stream, subjects jetstore.Subjects, again <-chan struct{}, left *sync.WaitGroup) (bool, error) {
	// Ownership records (ledger.fence.<p>) are followed too: they hold no account's state, but
	// the stream's head may be one, and a projector that never reached it would report lag
	// forever and keep a min_position or a rebuild at that position waiting. The consumer is
	// unfiltered (the stream holds only the two): the server's path for two filter subjects read
	// a 77,000-record stream 13x slower (Store.Read measured it).
	cfg := jetstream.OrderedConsumerConfig{}
	if start := p.Position() + 1; start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := p.orderedConsumer(ctx, stream, cfg, again)
	if err != nil {
		return false, err
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Two stages: the consumer's goroutine decodes, this one folds. The queue is bounded, so a
	// slow fold holds the consumer back instead of growing memory.
	decoded := make(chan decodedMsg, feedQueue)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			p.log.Error().Err(err).Msg("projector: message without metadata")
			return
		}
		d := decodedMsg{position: md.Sequence.Stream}
		if e, ok := jetstore.ParseEventSubject(m.Subject()); ok {
			d.accountID = e.AccountID
			if acct, ok := subjects.AccountOf(m.Subject()); !ok || acct != e.AccountID {
				// Not where the store files this account's events: its owner never reads it.
				d.err = fmt.Errorf("stored under %s, %w %s", m.Subject(), ErrNotAccountSubject, subjects.Of(e.AccountID))
			} else {
				d.ev, d.err = events.Decode(m.Data())
			}
		} else {
			d.record = true
		}
		select {
		case decoded <- d:
		case <-fctx.Done():
		}
	}, jetstream.PullMaxMessages(4096), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	// (A heartbeat a second: a consumer that missed its pull while the stream's leader moved is
	// made again after about two seconds, not ten, and the read models fall that much less behind;
	// jetstore's readPullHeartbeat.)
	if err != nil {
		return false, fmt.Errorf("projector consume: %w", err)
	}
	followAgain := p.fold(fctx, decoded, again)
	cancel() // what the old consumer still delivers is dropped: the next one starts after Position
	if !followAgain {
		cc.Stop()
		<-cc.Closed()
		return false, nil
	}
	left.Add(1)
	go func() {
		defer left.Done()
		cc.Stop() // waits for the consumer's lock, held by a reset in progress
		<-cc.Closed()
	}()
	return true, nil
}

// orderedConsumer makes the consumer follow reads through, asking again until it is made or
// ctx ends. Making it is a JetStream API request: right after a reconnect (the moment Run follows
// again) the store can be unable to answer for a while (a nats-server still starting, a stream
// electing its leader), and a refusal then must not stop the projector for good: the read
// models would stay where they are for the rest of the process. A reconnect signalled meanwhile
// asks again at once.
func (p *Projector) orderedConsumer(ctx context.Context, stream jetstream.Stream, cfg jetstream.OrderedConsumerConfig, again <-chan struct{}) (jetstream.Consumer, error) {
	pause := consumerRetryFirst
	for {
		cons, err := stream.OrderedConsumer(ctx, cfg)
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("projector consumer: %w", err)
		}
		p.log.Warn().Err(err).Uint64("position", p.Position()).Dur("retry_in", pause).Msg("projector cannot follow the stream yet; asking again")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("projector consumer: %w", ctx.Err())
		case <-again:
		case <-time.After(pause):
		}
		pause = min(2*pause, consumerRetryMax)
	}
}

// The pauses between requests for the projector's consumer while the store cannot make it.
const (
	consumerRetryFirst = 100 * time.Millisecond
	consumerRetryMax   = 2 * time.Second
)

// fold applies decoded messages until ctx ends or decoded is closed (false), or again is
// signalled (true).
func (p *Projector) fold(ctx context.Context, decoded <-chan decodedMsg, again <-chan struct{}) bool {
	for {
		select {
		case d, ok := <-decoded:
			if !ok {
				return false
			}
			if d.record {
				p.Pass(d.position)
			} else {
				p.ApplyDecoded(d.position, d.accountID, d.ev, d.err)
			}
			p.maybeCheckpoint(ctx, false)
		case <-again:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// feedQueue bounds the decoded messages waiting to be folded.
const feedQueue = 4096

// decodedMsg is a stream message after the decode stage.
type decodedMsg struct {
	position  uint64
	accountID string
	ev        events.Event
	err       error
	// record is set for a partition ownership record: a position, not an event.
	record bool
}

// Rebuild folds the whole stream, from position 1 to its head at the time of the call, into a
// fresh projector, with the same two-stage pipeline as Run.
func Rebuild(ctx context.Context, stream jetstream.Stream, log zerolog.Logger) (*Projector, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	p := NewProjector(log)
	head := info.State.LastSeq
	if head == 0 {
		return p, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(rctx, stream, nil) }()
	if err := p.WaitFor(ctx, head); err != nil {
		return nil, err
	}
	cancel()
	if err := <-errc; err != nil {
		return nil, err
	}
	return p, nil
}
