package writer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// snapStore keeps snapshots in memory, by name.
type snapStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *snapStore) Save(_ context.Context, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = bytes.Clone(data)
	return nil
}

func (s *snapStore) Load(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.m[name]), nil
}

func (s *snapStore) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[name]
	return ok
}

// partOwner owns the partitions it holds, never everything (a cluster node).
type partOwner struct {
	n    int
	held map[int]bool
}

func (o partOwner) Owns(id string) bool       { return o.held[ledger.PartitionOf(id, o.n)] }
func (o partOwner) OwnsEverything() bool      { return false }
func (o partOwner) OwnsPartition(p int) bool  { return o.held[p] }
func (o partOwner) holds(id string) bool      { return o.Owns(id) }
func (o partOwner) partitionOf(id string) int { return ledger.PartitionOf(id, o.n) }

const testParts = 4

// loaded is what a writer's "writer loaded" line says.
type loaded struct {
	From        uint64 `json:"from"`
	RecordsRead int    `json:"records_read"`
}

// partWriter loads a writer that holds the given partitions (nil: every one) of testParts; snaps
// may be nil. It returns the writer and its load line.
func partWriter(t *testing.T, st ledger.Store, snaps writer.SnapshotStore, held ...int) (*writer.Writer, loaded) {
	t.Helper()
	return partWriterWith(t, st, snaps, nil, held...)
}

// partWriterWith is partWriter with more options (claims), set by with after the others.
func partWriterWith(t *testing.T, st ledger.Store, snaps writer.SnapshotStore, with func(*writer.Options), held ...int) (*writer.Writer, loaded) {
	t.Helper()
	return partWriterOf(t, st, snaps, testParts, with, held...)
}

// partWriterOf is partWriterWith among n partitions.
func partWriterOf(t *testing.T, st ledger.Store, snaps writer.SnapshotStore, n int, with func(*writer.Options), held ...int) (*writer.Writer, loaded) {
	t.Helper()
	o := partOwner{n: n, held: map[int]bool{}}
	for _, p := range held {
		o.held[p] = true
	}
	var logs bytes.Buffer
	opts := writer.Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()), Log: zerolog.New(&logs),
		Clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, SweepInterval: time.Hour,
		NewID: func() string { return uuid.Must(uuid.NewV7()).String() }, Partitions: writer.Partitions{Count: n, Held: held},
		Owner: o, Holds: o.holds}
	if snaps != nil {
		opts.Snapshots = snaps
	}
	if held == nil {
		opts.Owner, opts.Holds = nil, nil
	}
	if with != nil {
		with(&opts)
	}
	w, err := writer.New(opts)
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	var line loaded
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Message == "writer loaded" {
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		}
	}
	return w, line
}

// accountsIn returns k account ids of partition p.
func accountsIn(p, k int, prefix string) []string {
	var out []string
	for i := 0; len(out) < k; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); ledger.PartitionOf(id, testParts) == p {
			out = append(out, id)
		}
	}
	return out
}

func buyL(cmd, acct, lic string) map[string]any {
	return map[string]any{"command_id": cmd, "account_id": acct, "license_id": lic, "source": "sales", "credits": "100"}
}

// statesOf keeps the states of the accounts in the given partitions.
func statesOf(w *writer.Writer, parts ...int) map[string]string {
	keep := map[int]bool{}
	for _, p := range parts {
		keep[p] = true
	}
	out := map[string]string{}
	for id, s := range states(w) {
		if keep[ledger.PartitionOf(id, testParts)] {
			out[id] = s
		}
	}
	return out
}

// Two nodes each write and snapshot their partitions; more events land after the snapshots; a
// third writer loads a different set of partitions: from their snapshots plus the events after
// them (not the whole stream), with the same state as a full replay, idempotent replies of
// compacted commands, remembered rejections, and the ids held in the partitions it does not load.
func TestPartitionSnapshotsLoadAnotherTenure(t *testing.T) {
	t.Parallel()
	st, snaps := memstore.New(), &snapStore{}
	a0, a1, a2 := accountsIn(0, 1, "pa")[0], accountsIn(1, 2, "pa"), accountsIn(2, 2, "pa")
	w1, _ := partWriter(t, st, snaps, 0, 1)
	stop1 := run(t, w1)
	w2, _ := partWriter(t, st, snaps, 2, 3)
	stop2 := run(t, w2)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c-a0", a0, "L-zero")).Err)
	first := send(t, w1, "purchase_license", buyL("c-a1", a1[0], "L-one"))
	require.Nil(t, first.Err)
	require.Nil(t, send(t, w2, "purchase_license", buyL("c-a2", a2[0], "L-two")).Err)
	over := map[string]any{"command_id": "c-over", "account_id": a2[0], "feature": "file_security", "credits": "5000"}
	rejected := send(t, w2, "allocate_credits", over)
	require.NotNil(t, rejected.Err)
	stop1()
	stop2()
	for p := range testParts {
		require.True(t, snaps.has(fmt.Sprintf("writer-v5-p%d", p)), "partition %d snapshotted at shutdown", p)
		require.True(t, snaps.has(fmt.Sprintf("writer-v5-p%d-ids", p)))
	}
	require.False(t, snaps.has("writer-v5"), "no writer owned everything")
	snapHead := w1.Head()

	// Events after the snapshots, by writers that save none.
	w1b, _ := partWriter(t, st, nil, 0, 1)
	stop := run(t, w1b)
	require.Nil(t, send(t, w1b, "purchase_license", buyL("c-a1b", a1[1], "L-one-b")).Err)
	stop()
	w2b, _ := partWriter(t, st, nil, 2, 3)
	stop = run(t, w2b)
	require.Nil(t, send(t, w2b, "purchase_license", buyL("c-a2b", a2[1], "L-two-b")).Err)
	stop()

	w3, line := partWriter(t, st, snaps, 1, 2)
	replay, _ := partWriter(t, st, nil, 1, 2)
	assert.Equal(t, statesOf(replay, 1, 2), states(w3), "snapshots plus the tail equal a full replay")
	assert.Len(t, states(w3), 4)
	assert.Equal(t, snapHead+1, line.From, "replayed from the oldest snapshot head, not the stream start")
	assert.Equal(t, int(w3.Head()-snapHead), line.RecordsRead, "only the stream after the oldest snapshot is read (5 events, 3 read)")

	// A writer that owns every partition and finds no whole snapshot loads the partitions' own.
	all, allLine := partWriter(t, st, snaps)
	full, _ := partWriter(t, st, nil)
	assert.Equal(t, states(full), states(all))
	assert.Equal(t, snapHead+1, allLine.From)

	stop3 := run(t, w3)
	defer stop3()
	again := send(t, w3, "purchase_license", buyL("c-a1", a1[0], "L-one"))
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Events, again.Events)
	assert.Equal(t, uint64(1), w3.Stats().ReadBack, "the compacted record was read back")
	rej := send(t, w3, "allocate_credits", over)
	require.NotNil(t, rej.Err)
	assert.True(t, rej.Replayed, "the rejection in partition 2's snapshot is remembered")
	taken := send(t, w3, "purchase_license", buyL("steal", a1[1], "L-zero"))
	require.NotNil(t, taken.Err, "a license held in partition 0 (not loaded here, never claimed) is refused")
	assert.Equal(t, ledger.CodeAlreadyExists, taken.Err.Code)
}

// A partition snapshot that cannot be read is not used: the load falls back to the stream.
func TestCorruptPartitionSnapshotFallsBack(t *testing.T) {
	t.Parallel()
	st, snaps := memstore.New(), &snapStore{}
	a1 := accountsIn(1, 1, "pc")[0]
	w1, _ := partWriter(t, st, snaps, 1)
	stop := run(t, w1)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c1", a1, "L1")).Err)
	stop()
	require.True(t, snaps.has("writer-v5-p1"))
	require.NoError(t, snaps.Save(context.Background(), "writer-v5-p1", []byte("creditledger-writer-partition-snapshot-v5\n\x04\x01\x00garbage")))
	w2, line := partWriter(t, st, snaps, 1)
	assert.Equal(t, uint64(1), line.From)
	assert.Equal(t, states(w1), states(w2))
}

// Another node appended to an account below the head of its partition's snapshot (the holder's
// side of a subscription move): the account's next event does not continue the snapshot's copy,
// and the load re-reads it instead of calling its history broken.
func TestSnapshotMissedAnotherNodesEvent(t *testing.T) {
	t.Parallel()
	st, snaps := memstore.New(), &snapStore{}
	acct, other := accountsIn(1, 2, "pm")[0], accountsIn(1, 2, "pm")[1]
	w1, _ := partWriter(t, st, snaps, 1)
	stop1 := run(t, w1)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c1", acct, "L1")).Err)
	intruder, _ := partWriter(t, st, nil) // believes it owns everything
	stopI := run(t, intruder)
	require.Nil(t, send(t, intruder, "activate_license", map[string]any{"command_id": "c2", "account_id": acct, "license_id": "L1"}).Err)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c3", other, "L2")).Err)
	stop1() // its snapshot of partition 1 misses c2
	require.Nil(t, send(t, intruder, "allocate_credits", map[string]any{"command_id": "c4", "account_id": acct, "feature": "file_security", "credits": "1"}).Err)
	stopI()

	w2, _ := partWriter(t, st, snaps, 1)
	replay, _ := partWriter(t, st, nil, 1)
	assert.Equal(t, states(replay), states(w2))
	stop := run(t, w2)
	defer stop()
	res := send(t, w2, "allocate_credits", map[string]any{"command_id": "c5", "account_id": acct, "feature": "file_security", "credits": "1"})
	assert.Nil(t, res.Err, "not history_broken")
}

// losingOwner owns partitions 1 and 2 until lost is set, then only 1.
type losingOwner struct{ lost atomic.Bool }

func (o *losingOwner) OwnsPartition(p int) bool { return p == 1 || (p == 2 && !o.lost.Load()) }
func (o *losingOwner) Owns(id string) bool      { return o.OwnsPartition(ledger.PartitionOf(id, testParts)) }
func (o *losingOwner) OwnsEverything() bool     { return false }

// A writer told to forget a partition it lost drops that partition's accounts (not those of a
// partition it still owns), never snapshots it again, and still knows the ids they hold.
func TestForgetLostPartition(t *testing.T) {
	t.Parallel()
	st, snaps, o := memstore.New(), &snapStore{}, &losingOwner{}
	a1, a2 := accountsIn(1, 1, "pf")[0], accountsIn(2, 1, "pf")[0]
	first, _ := partWriter(t, st, snaps, 1, 2) // loaded without snapshots: it saves them at once
	run(t, first)()
	p2, err := snaps.Load(context.Background(), "writer-v5-p2")
	require.NoError(t, err)
	require.NotNil(t, p2)
	w, err := writer.New(writer.Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()), Log: zerolog.Nop(),
		Clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, SweepInterval: time.Hour,
		NewID: func() string { return uuid.Must(uuid.NewV7()).String() }, Partitions: writer.Partitions{Count: testParts, Held: []int{1, 2}},
		Owner: o, Holds: func(id string) bool { return o.OwnsPartition(ledger.PartitionOf(id, testParts)) }, Snapshots: snaps})
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	stop := run(t, w)
	require.Nil(t, send(t, w, "purchase_license", buyL("f1", a1, "L1")).Err)
	require.Nil(t, send(t, w, "purchase_license", buyL("f2", a2, "L2")).Err)
	o.lost.Store(true)
	require.True(t, w.Forget([]int{1, 2}))
	require.NoError(t, w.Barrier(context.Background()), "the forget ran before this barrier")
	taken := send(t, w, "purchase_license", buyL("f3", a1, "L2"))
	require.NotNil(t, taken.Err)
	assert.Equal(t, ledger.CodeAlreadyExists, taken.Err.Code, "the dropped account's license stays taken")
	stop()
	assert.Equal(t, []string{a1}, keys(states(w)), "partition 2's account is dropped, partition 1's kept")
	assert.True(t, snaps.has("writer-v5-p1"))
	again, err := snaps.Load(context.Background(), "writer-v5-p2")
	require.NoError(t, err)
	assert.Equal(t, p2, again, "a dropped partition is never snapshotted again")
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
