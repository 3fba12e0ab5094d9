package writer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// These tests need no NATS: the writer runs on writer.MemStore, whose hooks make one account's
// store calls block or fail.

// runMem builds, loads and runs a writer on st.
func runMem(t *testing.T, st ledger.Store, o writer.Options) (*writer.Writer, func()) {
	t.Helper()
	o.Store, o.Rules, o.Clock, o.Log, o.SweepInterval = st, ledger.NewRules(ledger.DefaultCatalogue()),
		fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, zerolog.Nop(), time.Hour
	o.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	w, err := writer.New(o)
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	return w, run(t, w)
}

// gate blocks the calls that pass it until it is opened, and says when the first one arrives
// and whether one has left (opened, or given up on its context).
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
	left    atomic.Bool
}

func newGate() *gate { return &gate{entered: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) pass(ctx context.Context) error {
	g.once.Do(func() { close(g.entered) })
	defer g.left.Store(true)
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failFirstAppend makes the store fail the first append to account (a lost connection).
func failFirstAppend(st *writer.MemStore, account string) {
	var failed atomic.Bool
	st.BeforeAppend = func(recs []ledger.Record) error {
		if recs[0].AccountID == account && failed.CompareAndSwap(false, true) {
			return errors.New("connection lost")
		}
		return nil
	}
}

// staleSlow is a store whose first append on account "slow" fails and whose reads of "slow"
// cannot find its head and then wait at the gate: the account stays stale, its re-read held.
func staleSlow() (*writer.MemStore, *gate) {
	st := &writer.MemStore{}
	failFirstAppend(st, "slow")
	g := newGate()
	st.BeforeRead = func(ctx context.Context, op, id string) error {
		switch {
		case id != "slow":
			return nil
		case op == "AccountVersion":
			return errors.New("head read failed")
		default:
			return g.pass(ctx)
		}
	}
	return st, g
}

func buy(account, license string) map[string]any {
	return map[string]any{"command_id": "buy-" + account + "-" + license, "account_id": account, "license_id": license, "source": "sales", "credits": "10"}
}

// TestStaleReReadHoldsOnlyItsAccount: an append the store failed leaves account "slow" stale (its
// head could not be read either); its re-read blocks. Meanwhile a command on another account is
// answered, and the slow one is answered once its re-read returns.
func TestStaleReReadHoldsOnlyItsAccount(t *testing.T) {
	t.Parallel()
	st, g := staleSlow()
	w, _ := runMem(t, st, writer.Options{})
	slow := submitted(t, w, "purchase_license", buy("slow", "L1"))
	<-g.entered // the slow account's re-read has started and is blocked
	fast := do(t, w, "purchase_license", buy("fast", "L2"))
	require.Nil(t, fast.Err, "answered while the other account's re-read is blocked")
	close(g.open)
	got := result(t, slow)
	require.Nil(t, got.Err)
	assert.Equal(t, uint64(1), got.Version)
}

// TestReadBackHoldsOnlyItsCommand: the retry of a compacted command reads its reply back from the
// store; while that read blocks, other commands are answered, and the retry then gets its first
// reply.
func TestReadBackHoldsOnlyItsCommand(t *testing.T) {
	t.Parallel()
	st := &writer.MemStore{}
	w1, stop1 := runMem(t, st, writer.Options{})
	first := do(t, w1, "purchase_license", buy("a", "L1"))
	require.Nil(t, first.Err)
	stop1()

	g := newGate()
	st.BeforeRead = func(ctx context.Context, op, _ string) error {
		if op == "ReadAt" {
			return g.pass(ctx)
		}
		return nil
	}
	w2, _ := runMem(t, st, writer.Options{}) // Load compacts every record
	again := submitted(t, w2, "purchase_license", buy("a", "L1"))
	<-g.entered
	other := do(t, w2, "purchase_license", buy("b", "L2"))
	require.Nil(t, other.Err, "answered while the read-back is blocked")
	close(g.open)
	got := result(t, again)
	require.Nil(t, got.Err)
	assert.True(t, got.Replayed)
	got.Replayed = false
	assert.Equal(t, first, got)
	assert.Equal(t, uint64(1), w2.Stats().ReadBack)
}

// blockingClaims is a claims store whose claims of one id block until a gate opens.
type blockingClaims struct {
	mu      sync.Mutex
	holders map[string]string
	slowID  string
	gate    *gate
}

func (c *blockingClaims) Claim(ctx context.Context, id, account string) (string, error) {
	if id == c.slowID {
		if err := c.gate.pass(ctx); err != nil {
			return "", err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.holders[id]; ok {
		return h, nil
	}
	c.holders[id] = account
	return account, nil
}

// TestClaimHoldsOnlyItsCommand: a license id whose claim blocks holds only its command; another
// account's purchase (its own claim answered) goes on. Claims answered once are not asked again.
func TestClaimHoldsOnlyItsCommand(t *testing.T) {
	t.Parallel()
	claims := &blockingClaims{holders: map[string]string{}, slowID: "license:SLOW", gate: newGate()}
	w, _ := runMem(t, &writer.MemStore{}, writer.Options{Claims: claims})
	slow := submitted(t, w, "purchase_license", buy("a", "SLOW"))
	<-claims.gate.entered
	fast := do(t, w, "purchase_license", buy("b", "FAST"))
	require.Nil(t, fast.Err, "answered while the other claim is blocked")
	close(claims.gate.open)
	require.Nil(t, result(t, slow).Err)
	taken := do(t, w, "purchase_license", buy("c", "FAST"))
	require.NotNil(t, taken.Err)
	assert.Equal(t, ledger.CodeAlreadyExists, taken.Err.Code)
}

// hotConflicts makes every append touching account "hot" conflict: another writer appends to hot
// first (a valid event, so hot's head moves and its history stays whole).
func hotConflicts(st *writer.MemStore) func([]ledger.Record) error {
	return func(recs []ledger.Record) error {
		for _, r := range recs {
			if r.AccountID != "hot" {
				continue
			}
			have, err := st.ReadAccount(context.Background(), "hot", 0)
			if err != nil {
				return err
			}
			prev := events.ZeroHash
			if len(have) > 0 {
				ev, err := events.Decode(have[len(have)-1].Data)
				if err != nil {
					return err
				}
				prev = ev.Hash
			}
			raw, err := events.EncodePayload(events.AutoRenewSet{LicenseID: "X", Enabled: true})
			if err != nil {
				return err
			}
			env := events.Envelope{EventID: uuid.NewString(), Type: events.TypeAutoRenewSet, SchemaVersion: 1, AccountID: "hot",
				Version: uint64(len(have)) + 1, CommandID: fmt.Sprintf("other-writer-%d", len(have)), Payload: raw, PrevHash: prev}
			data, err := env.SealEncode()
			if err != nil {
				return err
			}
			st.Put(ledger.Record{AccountID: "hot", Data: data, Version: env.Version})
			return fmt.Errorf("%w: account hot", ledger.ErrConflict)
		}
		return nil
	}
}

// TestConflictChargesOnlyItsAccount: with a store that conflicts only on account hot, a command
// on cold decided in the same round is accepted, never answered unavailable after N attempts;
// hot's command runs out of attempts.
func TestConflictChargesOnlyItsAccount(t *testing.T) {
	t.Parallel()
	st := &writer.MemStore{}
	st.BeforeAppend = hotConflicts(st)
	w, err := writer.New(writer.Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()),
		Clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, NewID: uuid.NewString,
		Log: zerolog.Nop(), SweepInterval: time.Hour, MaxAttempts: 2})
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	// Queued before the writer runs, so both are decided in its first round and fail together.
	hot := submitted(t, w, "purchase_license", buy("hot", "H"))
	cold := submitted(t, w, "purchase_license", buy("cold", "C"))
	run(t, w)
	c := result(t, cold)
	require.Nil(t, c.Err, "cold did not conflict")
	h := result(t, hot)
	require.NotNil(t, h.Err)
	assert.Equal(t, ledger.CodeUnavailable, h.Err.Code)
	assert.GreaterOrEqual(t, w.Stats().FailedAppends, uint64(2))
}

// TestShutdownAnswersHeldRequests: a request held by a re-read that never returns is answered
// (unavailable) when the writer stops, and Run returns: side work ends with the writer.
func TestShutdownAnswersHeldRequests(t *testing.T) {
	t.Parallel()
	st := &writer.MemStore{}
	var failed atomic.Bool
	st.BeforeAppend = func(recs []ledger.Record) error {
		if failed.CompareAndSwap(false, true) {
			return errors.New("connection lost")
		}
		return nil
	}
	g := newGate() // never opened
	st.BeforeRead = func(ctx context.Context, op, _ string) error {
		if op == "AccountVersion" {
			return errors.New("head read failed")
		}
		return g.pass(ctx)
	}
	w, stop := runMem(t, st, writer.Options{})
	held := submitted(t, w, "purchase_license", buy("a", "L1"))
	<-g.entered
	stop() // returns once Run has
	got := result(t, held)
	require.NotNil(t, got.Err)
	assert.Equal(t, ledger.CodeUnavailable, got.Err.Code)
}

// TestRetiredWritersHeldCommandIsRedirected: a command whose id claim is still running when its
// writer is retired and stopped (a partition hand-over at start-up) is passed on to the writer
// that replaces it, not answered unavailable; TestThreeNodeCluster saw "unavailable: reserving
// license ...: context canceled" for such a command.
func TestRetiredWritersHeldCommandIsRedirected(t *testing.T) {
	t.Parallel()
	claims := &blockingClaims{holders: map[string]string{}, slowID: "license:SLOW", gate: newGate()}
	w, stop := runMem(t, &writer.MemStore{}, writer.Options{Claims: claims})
	slow := submitted(t, w, "purchase_license", buy("a", "SLOW"))
	<-claims.gate.entered
	w.Retire()
	stop()
	got := result(t, slow)
	require.NotNil(t, got.Err)
	assert.True(t, got.Redirect, "passed on, not refused: %v", got.Err)
}
