package projections

import (
	"context"
	"fmt"
	"sync"

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
	position uint64
	changed  chan struct{}
	parked   []Parked
	parkedN  int
	watchers map[string]map[chan uint64]struct{}
}

// NewProjector returns an empty projector.
func NewProjector(log zerolog.Logger) *Projector {
	return &Projector{log: log, accounts: map[string]ledger.Account{}, changed: make(chan struct{})}
}

// Seed replaces the read models with states folded elsewhere up to position (the writer's load
// at start-up), so a process folds its history once, not twice. Call it before Run.
func (p *Projector) Seed(position uint64, each func(func(id string, a ledger.Account))) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts = map[string]ledger.Account{}
	each(func(id string, a ledger.Account) { p.accounts[id] = a })
	p.position = position
	p.notify()
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if position <= p.position {
		return
	}
	p.position = position
	defer p.notify()
	ev, err := events.Decode(data)
	if err == nil {
		a, ok := p.accounts[accountID]
		if !ok {
			a = ledger.NewAccount(accountID)
		}
		if ev.AccountID != accountID || ev.Version != a.Version+1 {
			err = fmt.Errorf("event for %s version %d does not follow %s version %d", ev.AccountID, ev.Version, accountID, a.Version)
		} else {
			ev.Position = position
			p.accounts[accountID] = ledger.Evolve(a, ev)
			for ch := range p.watchers[accountID] {
				select {
				case ch <- position:
				default: // the watcher has a wake-up pending; it reads the newest state anyway
				}
			}
			return
		}
	}
	p.parkedN++
	if len(p.parked) < maxParked {
		p.parked = append(p.parked, Parked{Position: position, AccountID: accountID, Reason: err.Error()})
	}
	p.log.Error().Uint64("position", position).Str("account_id", accountID).Err(err).Msg("projector parked a message")
}

func (p *Projector) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

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
	for {
		p.mu.RLock()
		pos, ch := p.position, p.changed
		p.mu.RUnlock()
		if pos >= position {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
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
// ctx ends. The ordered consumer recovers from gaps and reconnects by itself.
func (p *Projector) Run(ctx context.Context, stream jetstream.Stream) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{jetstore.SubjectAll}}
	if start := p.Position() + 1; start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("projector consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			p.log.Error().Err(err).Msg("projector: message without metadata")
			return
		}
		subj := m.Subject()
		p.Apply(md.Sequence.Stream, subj[len(jetstore.SubjectPrefix):], m.Data())
	}, jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("projector consume: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}
