package writer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// recordingSnaps saves to a snapshot store and keeps the first whole snapshot saved.
type recordingSnaps struct {
	writer.SnapshotStore
	mu    sync.Mutex
	first []byte
	saved chan struct{} // closed when first is set
}

func newRecordingSnaps(s writer.SnapshotStore) *recordingSnaps {
	return &recordingSnaps{SnapshotStore: s, saved: make(chan struct{})}
}

func (s *recordingSnaps) Save(ctx context.Context, name string, data []byte) error {
	err := s.SnapshotStore.Save(ctx, name, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && name == "writer-v5" && s.first == nil {
		s.first = append([]byte(nil), data...)
		close(s.saved)
	}
	return err
}

// onlySnapshot serves one whole snapshot and keeps nothing.
type onlySnapshot struct{ data []byte }

func (onlySnapshot) Save(context.Context, string, []byte) error { return nil }
func (s onlySnapshot) Load(_ context.Context, name string) ([]byte, error) {
	if name == "writer-v5" {
		return s.data, nil
	}
	return nil, nil
}

// upTo is the store as it stood at position h: a load reads nothing past it.
type upTo struct {
	ledger.Store
	h uint64
}

func (s upTo) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	head, err := s.Store.Read(ctx, from, func(r ledger.Record) error {
		if r.Position > s.h {
			return nil
		}
		return fn(r)
	})
	return min(head, s.h), err
}

// holdEncode holds the first snapshot encoding until release is called; entered is closed once
// it is held. release is also called at the test's end (before the writer is stopped).
func holdEncode(t *testing.T, w *writer.Writer) (entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var first, done sync.Once
	w.HoldEncode(func() {
		first.Do(func() {
			close(in)
			<-out
		})
	})
	release = func() { done.Do(func() { close(out) }) }
	return in, release
}

func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

// A periodic snapshot is encoded beside the writer goroutine: while its encoding is held,
// commands on a captured account and on a new one are accepted and answered.
func TestPeriodicSnapshotEncodesBesideTheWriter(t *testing.T) {
	r := newRig(t)
	snaps := newRecordingSnaps(r.snaps)
	w := newWriter(t, r, r.store, writer.Options{Snapshots: snaps, SnapshotEvery: 4})
	entered, release := holdEncode(t, w)
	stop := run(t, w)
	t.Cleanup(release) // (cleanups run last first: before stop)
	for i := range 4 {
		require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": fmt.Sprint("p", i), "account_id": fmt.Sprint("acct-", i),
			"license_id": fmt.Sprint("lic-", i), "source": "sales", "credits": "100"}).Err)
	}
	waitFor(t, entered, "the periodic snapshot's encoding")

	captured := do(t, w, "activate_license", map[string]any{"command_id": "a0", "account_id": "acct-0", "license_id": "lic-0"})
	require.Nil(t, captured.Err, "a command on an account the snapshot captured is answered while it is encoded")
	fresh := do(t, w, "purchase_license", map[string]any{"command_id": "p-new", "account_id": "acct-new", "license_id": "lic-new", "source": "sales", "credits": "5"})
	require.Nil(t, fresh.Err, "a command on a new account is answered while the snapshot is encoded")
	again := do(t, w, "purchase_license", map[string]any{"command_id": "p1", "account_id": "acct-1", "license_id": "lic-1", "source": "sales", "credits": "100"})
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed, "a retry of a command the snapshot compacted is answered too")

	release()
	waitFor(t, snaps.saved, "the periodic snapshot's save")
	head, err := writer.SnapshotHead(snaps.first)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), head)
	stop()
}

// A snapshot encoded while commands keep changing the accounts, the idempotency records and the
// compact rejections it captured is exactly the state at its head: a writer restored from it
// and one that replayed the stream up to that head hold the same accounts and give the same
// answers to every earlier command.
func TestSnapshotBesideIsTheStateAtItsHead(t *testing.T) {
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	snaps := newRecordingSnaps(r.snaps)
	const accounts = 6
	w := newWriter(t, r, r.store, writer.Options{Snapshots: snaps, SnapshotEvery: 3 * accounts, Rejections: log, RejectionsRemembered: 2})
	entered, release := holdEncode(t, w)
	stop := run(t, w)
	t.Cleanup(release)

	type sent struct {
		name string
		body map[string]any
		res  writer.Result
	}
	var before []sent
	send := func(name string, body map[string]any) writer.Result {
		res := do(t, w, name, body)
		before = append(before, sent{name, body, res})
		return res
	}
	for i := range accounts {
		acct, lic := fmt.Sprint("acct-", i), fmt.Sprint("lic-", i)
		require.Nil(t, send("purchase_license", map[string]any{"command_id": "p" + acct, "account_id": acct, "license_id": lic, "source": "sales", "credits": "100"}).Err)
		require.Nil(t, send("activate_license", map[string]any{"command_id": "a" + acct, "account_id": acct, "license_id": lic}).Err)
		require.NotNil(t, send("allocate_credits", map[string]any{"command_id": "r" + acct, "account_id": acct, "feature": "file_security", "credits": "1000"}).Err)
		require.Nil(t, send("allocate_credits", map[string]any{"command_id": "x" + acct, "account_id": acct, "feature": "file_security", "credits": "10"}).Err)
	}
	waitFor(t, entered, "the periodic snapshot's encoding")

	// While it is held, every captured account changes in place (licenses, allocations), new
	// rejections push older ones into the compact form, and older commands are retried.
	for i := range accounts {
		acct := fmt.Sprint("acct-", i)
		require.Nil(t, do(t, w, "allocate_credits", map[string]any{"command_id": "y" + acct, "account_id": acct, "feature": "file_security", "credits": "20"}).Err)
		require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "q" + acct, "account_id": acct, "license_id": "more-" + acct, "source": "sales", "credits": "7"}).Err)
		require.Nil(t, do(t, w, "activate_license", map[string]any{"command_id": "b" + acct, "account_id": acct, "license_id": "more-" + acct}).Err)
		require.NotNil(t, do(t, w, "allocate_credits", map[string]any{"command_id": "s" + acct, "account_id": acct, "feature": "file_security", "credits": "5000"}).Err)
		require.NotNil(t, do(t, w, "allocate_credits", map[string]any{"command_id": "r" + acct, "account_id": acct, "feature": "file_security", "credits": "1000"}).Err)
	}
	release()
	waitFor(t, snaps.saved, "the periodic snapshot's save")
	head, err := writer.SnapshotHead(snaps.first)
	require.NoError(t, err)
	require.Less(t, head, w.Head(), "commands landed after the snapshot's head")
	stop()

	oracle := newWriter(t, r, upTo{r.store, head}, writer.Options{Rejections: log})
	restored := newWriter(t, r, upTo{r.store, head}, writer.Options{Rejections: log, Snapshots: onlySnapshot{snaps.first}})
	require.Equal(t, head, oracle.Head())
	require.Equal(t, head, restored.Head())
	want := states(oracle)
	require.Len(t, want, accounts)
	assert.Equal(t, want, states(restored), "the snapshot holds exactly the accounts at its head")

	run(t, oracle)
	run(t, restored)
	for _, s := range before {
		if s.res.Err == nil && s.res.Position > head {
			continue // accepted past the head: new to both
		}
		o, g := do(t, oracle, s.name, s.body), do(t, restored, s.name, s.body)
		assert.True(t, o.Replayed, s.body["command_id"])
		assert.Equal(t, o.Replayed, g.Replayed, s.body["command_id"])
		assert.Equal(t, o.Events, g.Events, s.body["command_id"])
		assert.Equal(t, o.Err, g.Err, s.body["command_id"])
	}
	assert.Equal(t, head, restored.Head(), "retries appended nothing")
}
