package writer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// otherHistory is the warning a load logs for each snapshot it passes over (snapident.go).
const otherHistory = "snapshot belongs to another history of the stream; not restored"

// logSink is a writer's log, written by its goroutines while a test reads it.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// lines returns the log lines whose message is msg, decoded.
func (s *logSink) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// loadWriter builds a writer on st with o (its store, snapshots and partitions) and loads it:
// Load, or Preload then CatchUp when near.
func loadWriter(t *testing.T, st ledger.Store, o writer.Options, near bool) (*writer.Writer, *logSink, error) {
	t.Helper()
	logs := &logSink{}
	o.Store, o.Rules, o.Log, o.SweepInterval = st, ledger.NewRules(ledger.DefaultCatalogue()), zerolog.New(logs), time.Hour
	o.Clock = fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	o.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	w, err := writer.New(o)
	require.NoError(t, err)
	if !near {
		return w, logs, w.Load(context.Background())
	}
	if err := w.Preload(context.Background()); err != nil {
		return w, logs, err
	}
	return w, logs, w.CatchUp(context.Background())
}

// recreate deletes the rig's LEDGER stream and creates it again, empty (an operator's `nats
// stream rm`, or another deployment's stream put in its place); the snapshot bucket stays.
func recreate(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(r.url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(ctx, jetstore.StreamName))
	r.store, err = jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
}

// buyAndAllocate appends three events of acct: a license of credits bought, activated, and
// allocated from.
func buyAndAllocate(t *testing.T, w *writer.Writer, acct, lic, credits, allocated string) {
	t.Helper()
	buy := buyL("buy-"+lic, acct, lic)
	buy["credits"] = credits
	require.Nil(t, send(t, w, "purchase_license", buy).Err)
	require.Nil(t, send(t, w, "activate_license", map[string]any{"command_id": "act-" + lic, "account_id": acct, "license_id": lic}).Err)
	require.Nil(t, send(t, w, "allocate_credits", map[string]any{"command_id": "alloc-" + lic, "account_id": acct,
		"feature": "file_security", "credits": allocated}).Err)
}

// newHistory writes the recreated stream's history: shared with another license and allocation
// (positions 1-3, all at or below the old snapshot's head), then fillers' purchases past it.
func newHistory(t *testing.T, w *writer.Writer, shared string, fillers []string) {
	t.Helper()
	buyAndAllocate(t, w, shared, "L-new", "50", "7")
	for _, f := range fillers {
		require.Nil(t, send(t, w, "purchase_license", buyL("buy-"+f, f, "L-"+f)).Err)
	}
}

// A whole snapshot taken on a LEDGER stream that was deleted and created again, and has since
// grown past the snapshot's head with another history, is not restored: Load and Preload hold
// what a replay of the new stream holds (no account that only the old history had, the new
// history's balances), log the snapshot passed over, and the writer soon replaces it with one
// of the new history, which the next load restores.
func TestSnapshotOfARecreatedStreamIsNotRestored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 1000)
	require.Nil(t, send(t, w1, "purchase_license", buyL("buy-old", "old-only", "L-old")).Err)
	buyAndAllocate(t, w1, "shared", "L-first", "100", "10")
	stop1()
	snapHead := w1.Head()
	data, err := r.snaps.Load(ctx, "writer-v5")
	require.NoError(t, err)
	fp, err := writer.SnapshotFingerprint(data)
	require.NoError(t, err)
	require.NotEmpty(t, fp, "the snapshot names the message at its head")

	recreate(t, r)
	w2, stop2 := r.start(t, nil, 0)
	newHistory(t, w2, "shared", []string{"f-0", "f-1", "f-2"})
	stop2()
	require.Greater(t, w2.Head(), snapHead, "the new stream is longer than the snapshot's head")
	replay, stopReplay := r.start(t, nil, 0)
	stopReplay()
	want := states(replay)
	require.Contains(t, want["shared"], `"L-new"`)

	for _, near := range []bool{false, true} {
		w, logs, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, near)
		require.NoError(t, err, "near %v", near)
		got := states(w)
		assert.Equal(t, want, got, "near %v: what a replay of the new stream holds", near)
		assert.NotContains(t, got, "old-only", "near %v", near)
		assert.Equal(t, w2.Head(), w.Head(), "near %v", near)
		warned := logs.lines(t, otherHistory)
		if assert.Len(t, warned, 1, "near %v", near) {
			assert.Equal(t, "warn", warned[0]["level"])
			assert.Equal(t, "writer-v5", warned[0]["snapshot"])
			assert.EqualValues(t, snapHead, warned[0]["position"])
			assert.Equal(t, "another message is at its head", warned[0]["reason"])
		}
		assert.Empty(t, logs.lines(t, "snapshot restored"), "near %v", near)
	}

	// A writer that passed over it snapshots the new history at once; the next load restores that.
	w, _, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, false)
	require.NoError(t, err)
	stop := run(t, w)
	require.Eventually(t, func() bool {
		data, err := r.snaps.Load(ctx, "writer-v5")
		head, herr := writer.SnapshotHead(data)
		return err == nil && herr == nil && head == w2.Head()
	}, 10*time.Second, 5*time.Millisecond)
	stop()
	w, logs, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, false)
	require.NoError(t, err)
	assert.Equal(t, want, states(w))
	assert.Empty(t, logs.lines(t, otherHistory))
	assert.Len(t, logs.lines(t, "snapshot restored"), 1)
}

// A stream recreated shorter than the snapshot's head: Load passes the snapshot over (no message
// at its head), and Preload answers ErrBehind (the replica read may only lag), never restoring it.
func TestSnapshotPastARecreatedStreamsHeadIsNotRestored(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 1000)
	buyAndAllocate(t, w1, "shared", "L-first", "100", "10")
	require.Nil(t, send(t, w1, "purchase_license", buyL("buy-old", "old-only", "L-old")).Err)
	stop1()
	recreate(t, r)
	w2, stop2 := r.start(t, nil, 0)
	require.Nil(t, send(t, w2, "purchase_license", buyL("buy-new", "shared", "L-new")).Err)
	stop2()
	require.Less(t, w2.Head(), w1.Head())

	_, _, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, true)
	require.ErrorIs(t, err, writer.ErrBehind)
	w, logs, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, false)
	require.NoError(t, err)
	assert.Equal(t, states(w2), states(w))
	warned := logs.lines(t, otherHistory)
	if assert.Len(t, warned, 1) {
		assert.Equal(t, "no message is at its head", warned[0]["reason"])
	}
}

// accountsAmong returns k account ids of partition p of n.
func accountsAmong(n, p, k int, prefix string) []string {
	var out []string
	for i := 0; len(out) < k; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); ledger.PartitionOf(id, n) == p {
			out = append(out, id)
		}
	}
	return out
}

// partitionOptions are the options of a writer of the held partitions of n, with snaps.
func partitionOptions(n int, snaps writer.SnapshotStore, held ...int) writer.Options {
	o := partOwner{n: n, held: map[int]bool{}}
	for _, p := range held {
		o.held[p] = true
	}
	return writer.Options{Snapshots: snaps, Partitions: writer.Partitions{Count: n, Held: held}, Owner: o, Holds: o.holds}
}

// The same for the snapshots of a node that holds some partitions (writer-v5-p<n>): each taken
// on the old stream is passed over, and its partition replayed from the new stream's start.
func TestPartitionSnapshotsOfARecreatedStreamAreNotRestored(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	n := r.store.Partitions()
	oldOnly, shared := accountsAmong(n, 1, 1, "old")[0], accountsAmong(n, 2, 1, "shared")[0]
	w1, _ := partWriterOf(t, r.store, r.snaps, n, nil, 1, 2)
	stop1 := run(t, w1)
	require.Nil(t, send(t, w1, "purchase_license", buyL("buy-old", oldOnly, "L-old")).Err)
	buyAndAllocate(t, w1, shared, "L-first", "100", "10")
	stop1()
	snapHead := w1.Head()

	recreate(t, r)
	all, _ := partWriterOf(t, r.store, nil, n, nil)
	stop := run(t, all)
	newHistory(t, all, shared, accountsAmong(n, 1, 3, "filler"))
	stop()
	require.Greater(t, all.Head(), snapHead)
	replay, _ := partWriterOf(t, r.store, nil, n, nil, 1, 2)
	want := states(replay)
	require.Contains(t, want[shared], `"L-new"`)

	for _, near := range []bool{false, true} {
		w, logs, err := loadWriter(t, r.store, partitionOptions(n, r.snaps, 1, 2), near)
		require.NoError(t, err, "near %v", near)
		assert.Equal(t, want, states(w), "near %v: what a replay of the new stream holds", near)
		assert.NotContains(t, states(w), oldOnly, "near %v", near)
		var passed []any
		for _, l := range logs.lines(t, otherHistory) {
			passed = append(passed, l["snapshot"])
		}
		assert.ElementsMatch(t, []any{"writer-v5-p1", "writer-v5-p2"}, passed, "near %v", near)
	}
}

// Partition snapshots of two histories (one saved on the old stream, one since it was recreated)
// are judged each on its own: the one of the new history is restored, the other passed over and
// its partition replayed from the start.
func TestPartitionSnapshotsOfTwoHistoriesAreJudgedEachOnItsOwn(t *testing.T) {
	t.Parallel()
	snaps := &snapStore{}
	old := memstore.New()
	w1, _ := partWriter(t, old, snaps, 1, 2)
	stop := run(t, w1)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c1", accountsIn(1, 1, "mx-old")[0], "L1")).Err)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c2", accountsIn(2, 1, "mx-old")[0], "L2")).Err)
	stop()

	st := memstore.New() // the recreated stream
	fill := func(p int, prefix string) {
		all, _ := partWriter(t, st, nil)
		stop := run(t, all)
		for i, id := range accountsIn(p, 2, prefix) {
			require.Nil(t, send(t, all, "purchase_license", buyL(prefix+fmt.Sprint(i), id, "L-"+id)).Err)
		}
		stop()
	}
	fill(2, "mx-two")
	one, _ := partWriter(t, st, snaps, 1) // snapshots partition 1 of the new stream at its stop
	stop = run(t, one)
	require.Nil(t, send(t, one, "purchase_license", buyL("c3", accountsIn(1, 1, "mx-one")[0], "L3")).Err)
	stop()
	fill(1, "mx-late")

	w, logs, err := loadWriter(t, st, partitionOptions(testParts, snaps, 1, 2), false)
	require.NoError(t, err)
	replay, _ := partWriter(t, st, nil, 1, 2)
	assert.Equal(t, statesOf(replay, 1, 2), states(w))
	passed := logs.lines(t, otherHistory)
	if assert.Len(t, passed, 1) {
		assert.Equal(t, "writer-v5-p2", passed[0]["snapshot"])
	}
	restored := logs.lines(t, "partition snapshots restored")
	require.Len(t, restored, 1)
	assert.EqualValues(t, 1, restored[0]["from"], "partition 2 is replayed from the start")
}

// A snapshot written before snapshots named their history (no fingerprint) is restored as it
// always was: unchecked, the stream read from its head on.
func TestSnapshotWithoutAFingerprintLoadsAsBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 1000)
	buyAndAllocate(t, w1, "shared", "L-first", "100", "10")
	stop1()
	snapHead := w1.Head()
	data, err := r.snaps.Load(ctx, "writer-v5")
	require.NoError(t, err)
	older, err := writer.AsOlderBuild(data)
	require.NoError(t, err)
	fp, err := writer.SnapshotFingerprint(older)
	require.NoError(t, err)
	require.Empty(t, fp)
	require.NoError(t, r.snaps.Save(ctx, "writer-v5", older))
	w2, stop2 := r.start(t, nil, 0)
	require.Nil(t, send(t, w2, "purchase_license", buyL("buy-later", "later", "L-later")).Err)
	stop2()

	w, logs, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, false)
	require.NoError(t, err)
	assert.Equal(t, states(w2), states(w))
	assert.Empty(t, logs.lines(t, otherHistory))
	restored := logs.lines(t, "snapshot restored")
	require.Len(t, restored, 1)
	assert.EqualValues(t, snapHead, restored[0]["position"])
	loaded := logs.lines(t, "writer loaded")
	require.Len(t, loaded, 1)
	assert.EqualValues(t, 1, loaded[0]["records_read"], "only the event after the snapshot")
}

// laggingPrints is a store whose nearest replica does not hold any position yet when asked for
// fingerprints (ledger.NearReader.FingerprintsNear); the leader holds everything.
type laggingPrints struct{ *memstore.Store }

func (laggingPrints) FingerprintsNear(_ context.Context, ps []uint64) ([][]byte, error) {
	return make([][]byte, len(ps)), nil
}

// A Preload whose replica does not hold the snapshot's head yet answers ErrBehind: it does not
// take the lag for another history and discard a good snapshot. A Load from the leader then
// restores it.
func TestPreloadFromAReplicaThatLacksTheSnapshotsHeadIsBehind(t *testing.T) {
	t.Parallel()
	st, snaps := memstore.New(), &snapStore{}
	w1, _ := partWriter(t, st, snaps)
	stop := run(t, w1)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c1", "lag-a", "L1")).Err)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c2", "lag-b", "L2")).Err)
	stop()
	require.True(t, snaps.has("writer-v5"))

	_, logs, err := loadWriter(t, laggingPrints{st}, writer.Options{Snapshots: snaps}, true)
	require.ErrorIs(t, err, writer.ErrBehind)
	assert.Empty(t, logs.lines(t, otherHistory))
	w, logs, err := loadWriter(t, laggingPrints{st}, writer.Options{Snapshots: snaps}, false)
	require.NoError(t, err)
	assert.Equal(t, states(w1), states(w))
	assert.Len(t, logs.lines(t, "snapshot restored"), 1)
}

// An older build's snapshot (no fingerprint) ahead of a recreated stream is passed over whole:
// the rejection it remembered is not replayed to a retry on the new history, which decides it
// afresh, as a load without a snapshot does (the rejection log, when there is one, is read from
// its start). The reset used to keep the snapshot's rejections.
func TestSnapshotAheadOfTheStreamForgetsItsRejections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 1000)
	buyAndAllocate(t, w1, "shared", "L-first", "100", "10")
	big := map[string]any{"command_id": "alloc-big", "account_id": "shared", "feature": "file_security", "credits": "500"}
	require.Equal(t, ledger.CodeInsufficientCredits, send(t, w1, "allocate_credits", big).Err.Code)
	stop1()
	data, err := r.snaps.Load(ctx, "writer-v5")
	require.NoError(t, err)
	older, err := writer.AsOlderBuild(data)
	require.NoError(t, err)
	require.NoError(t, r.snaps.Save(ctx, "writer-v5", older))

	recreate(t, r) // shorter than the snapshot's head: an older snapshot is only found ahead
	w2, stop2 := r.start(t, nil, 0)
	buy := buyL("buy-new", "shared", "L-new")
	buy["credits"] = "1000"
	require.Nil(t, send(t, w2, "purchase_license", buy).Err)
	require.Nil(t, send(t, w2, "activate_license", map[string]any{"command_id": "act-new", "account_id": "shared", "license_id": "L-new"}).Err)
	stop2()
	require.Less(t, w2.Head(), w1.Head())

	w, _, err := loadWriter(t, r.store, writer.Options{Snapshots: r.snaps}, false)
	require.NoError(t, err)
	stop := run(t, w)
	defer stop()
	res := send(t, w, "allocate_credits", big)
	require.Nil(t, res.Err, "the old history's rejection was replayed on the new one")
	assert.False(t, res.Replayed)
}
