package writer_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// owner is a settable Ownership: the writer owns the accounts in mine while on is true.
type owner struct {
	on   atomic.Bool
	mine map[string]bool
}

func (o *owner) Owns(id string) bool  { return o.on.Load() && o.mine[id] }
func (o *owner) OwnsEverything() bool { return false }

func memWriter(t *testing.T, st ledger.Store, o writer.Options) *writer.Writer {
	t.Helper()
	o.Store, o.Rules, o.Log, o.SweepInterval = st, ledger.NewRules(ledger.DefaultCatalogue()), zerolog.Nop(), time.Hour
	o.Clock = fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	o.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	w, err := writer.New(o)
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	return w
}

func send(t *testing.T, w *writer.Writer, name string, body map[string]any) writer.Result {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	p, err := commands.Parse(name, raw)
	require.NoError(t, err)
	done := make(chan writer.Result, 1)
	require.NoError(t, w.Submit(submit.Request{CommandID: p.CommandID, AccountID: p.AccountID, BodyHash: p.BodyHash,
		Command: p.Command, Reply: func(res writer.Result) { done <- res }}))
	select {
	case res := <-done:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
		return writer.Result{}
	}
}

// A writer decides only the accounts it owns at the moment: anything else is answered Redirect
// (unavailable, nothing appended), and ownership lost between commands takes effect at once.
// In memory, no NATS: the ownership check is the writer's own.
func TestWriterDecidesOnlyWhatItOwns(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	o := &owner{mine: map[string]bool{"mine": true}}
	o.on.Store(true)
	w := memWriter(t, st, writer.Options{Owner: o})
	stop := run(t, w)
	defer stop()
	buy := func(id, acct string) map[string]any {
		return map[string]any{"command_id": id, "account_id": acct, "license_id": "L-" + id, "source": "sales", "credits": "5"}
	}
	require.Nil(t, send(t, w, "purchase_license", buy("b1", "mine")).Err)
	other := send(t, w, "purchase_license", buy("b2", "theirs"))
	assert.True(t, other.Redirect)
	require.NotNil(t, other.Err)
	assert.Equal(t, ledger.CodeUnavailable, other.Err.Code)

	o.on.Store(false) // the lease lapsed
	lost := send(t, w, "purchase_license", buy("b3", "mine"))
	assert.True(t, lost.Redirect)
	v, err := st.AccountVersion(context.Background(), "theirs")
	require.NoError(t, err)
	assert.Zero(t, v, "nothing appended for an account it does not own")
	recs, err := st.ReadAccount(context.Background(), "mine", 0)
	require.NoError(t, err)
	assert.Len(t, recs, 1, "nothing appended after the lease lapsed")
	require.NoError(t, w.Barrier(context.Background()), "a barrier with nothing in flight returns")
}

// A writer that holds some accounts loads only theirs (Holds).
func TestWriterLoadsOnlyWhatItHolds(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	w1 := memWriter(t, st, writer.Options{})
	stop := run(t, w1)
	for _, acct := range []string{"mine", "theirs"} {
		require.Nil(t, send(t, w1, "purchase_license", map[string]any{"command_id": "c-" + acct, "account_id": acct,
			"license_id": "L-" + acct, "source": "sales", "credits": "5"}).Err)
	}
	stop()
	w2 := memWriter(t, st, writer.Options{Holds: func(id string) bool { return id == "mine" }})
	var held []string
	w2.EachAccount(func(id string, _ ledger.Account) { held = append(held, id) })
	assert.Equal(t, []string{"mine"}, held)
}

// memSnaps keeps snapshots in memory.
type memSnaps struct {
	mu    sync.Mutex
	saved int
}

func (m *memSnaps) Save(context.Context, string, []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saved++
	return nil
}

func (m *memSnaps) Load(context.Context, string) ([]byte, error) { return nil, nil }

func (m *memSnaps) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saved
}

// everything is an Ownership that owns every account while all is true.
type everything struct{ all atomic.Bool }

func (e *everything) Owns(string) bool     { return true }
func (e *everything) OwnsEverything() bool { return e.all.Load() }

// A writer that no longer owns every partition saves no snapshot: another node may have written
// the partitions it gave up, and a snapshot of its stale copy would hide those events.
func TestNoSnapshotWithoutEveryPartition(t *testing.T) {
	t.Parallel()
	for _, all := range []bool{true, false} {
		st, snaps, o := memstore.New(), &memSnaps{}, &everything{}
		o.all.Store(all)
		w := memWriter(t, st, writer.Options{Owner: o, Snapshots: snaps, SnapshotEvery: 1})
		stop := run(t, w)
		require.Nil(t, send(t, w, "purchase_license", map[string]any{"command_id": "c1", "account_id": "acme",
			"license_id": "L1", "source": "sales", "credits": "5"}).Err)
		stop()
		if all {
			assert.Positive(t, snaps.count(), "owning everything, it snapshots")
		} else {
			assert.Zero(t, snaps.count(), "not owning everything, it never snapshots")
		}
	}
}
