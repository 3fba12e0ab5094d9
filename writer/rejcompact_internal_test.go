package writer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
)

// memRejections is an in-memory rejection log: one message per append (and per revocation), as
// jetstore writes a round that fits one (ledger/jetstore passes the same round trip against a
// real server). first, when set, is its first position: the messages below are gone.
type memRejections struct {
	mu    sync.Mutex
	msgs  [][]ledger.Rejection
	revs  map[uint64][]ledger.Revocation // by position: a message of revocations
	first uint64
}

func (l *memRejections) AppendRejections(_ context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, rs)
	at := make([]ledger.RejectionAt, len(rs))
	for i := range at {
		at[i] = ledger.RejectionAt{Position: uint64(len(l.msgs)), Index: i}
	}
	return at, nil
}

func (l *memRejections) RevokeRejections(_ context.Context, rs []ledger.Revocation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, nil)
	if l.revs == nil {
		l.revs = map[uint64][]ledger.Revocation{}
	}
	l.revs[uint64(len(l.msgs))] = rs
	return nil
}

func (l *memRejections) FirstPosition(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.first, 1), nil
}

func (l *memRejections) ReadRejections(_ context.Context, from uint64, fn func(ledger.Rejection, ledger.RejectionAt), revoked func(ledger.Revocation)) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := max(from, l.first, 1); p <= uint64(len(l.msgs)); p++ {
		for i, r := range l.msgs[p-1] {
			fn(r, ledger.RejectionAt{Position: p, Index: i})
		}
		for _, rv := range l.revs[p] {
			revoked(rv)
		}
	}
	return uint64(len(l.msgs)), nil
}

func (l *memRejections) ReadRejectionAt(_ context.Context, at ledger.RejectionAt) (ledger.Rejection, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.Position < max(l.first, 1) || at.Position > uint64(len(l.msgs)) || at.Index < 0 || at.Index >= len(l.msgs[at.Position-1]) {
		return ledger.Rejection{}, ledger.ErrNoRecord
	}
	return l.msgs[at.Position-1][at.Index], nil
}

// answered runs one command through the writer's rounds and returns its answer.
func answered(t *testing.T, w *Writer, id string, cmd ledger.Command) Result {
	t.Helper()
	var got *Result
	roundTrip(t, w, []*request{{Request: submit.Request{CommandID: id, AccountID: "acme", BodyHash: "h-" + id, Command: cmd,
		Reply: func(r Result) { got = &r }}}})
	require.NotNil(t, got, "%s answered", id)
	return *got
}

// TestRejectionHashCollision: a compact rejection whose place holds another command's rejection
// (a forced collision of keys), or nothing (a message gone past the log's retention), is a miss:
// the command is decided afresh, not answered with the other's rejection.
func TestRejectionHashCollision(t *testing.T) {
	t.Parallel()
	log := &memRejections{}
	w, err := New(Options{Store: &MemStore{}, Rules: ledger.NewRules(ledger.DefaultCatalogue()), Clock: clockAt{},
		NewID: func() string { return "id" }, Log: zerolog.Nop(), SweepInterval: time.Hour, Rejections: log, RejectionsRemembered: 1})
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	require.Nil(t, answered(t, w, "buy", ledger.PurchaseLicense{LicenseID: "L", Source: "sales", Credits: decimal.NewFromInt(10), TermMonths: 12}).Err)
	require.Nil(t, answered(t, w, "act", ledger.ActivateLicense{LicenseID: "L"}).Err)
	big := ledger.AllocateCredits{Feature: "file_security", Credits: decimal.NewFromInt(50)}
	other := answered(t, w, "other", big)
	require.NotNil(t, other.Err)
	require.Equal(t, ledger.CodeInsufficientCredits, other.Err.Code)
	at := w.idem.rejected["other"].at
	require.Equal(t, ledger.RejectionAt{Position: 1, Index: 0}, at)

	entry, ok := rejectEntry(at, -1)
	require.True(t, ok)
	gone, ok := rejectEntry(ledger.RejectionAt{Position: 99, Index: 3}, -1)
	require.True(t, ok)
	w.idem.rejCompact = map[uint64]uint64{commandKey("mine"): entry, commandKey("lost"): gone}
	small := ledger.AllocateCredits{Feature: "file_security", Credits: decimal.NewFromInt(5)}
	for _, id := range []string{"mine", "lost"} {
		res := answered(t, w, id, small)
		assert.Nil(t, res.Err, "%s is decided as a new command", id)
		assert.False(t, res.Replayed, id)
	}
	assert.Zero(t, w.stats.rejReadBack.Load())

	// The genuine one is read back (it is the other's own entry).
	w.idem.rejected = map[string]*rejection{}
	w.idem.rejCompact[commandKey("other")] = entry
	again := answered(t, w, "other", big)
	assert.True(t, again.Replayed)
	assert.Equal(t, other.Err, again.Err)
	assert.Equal(t, uint64(1), w.stats.rejReadBack.Load())
}

// TestRejectEntryRange: an entry packs the message's position, the index and the partition, and
// refuses what does not fit (the rejection is then forgotten when pushed out).
func TestRejectEntryRange(t *testing.T) {
	t.Parallel()
	require.GreaterOrEqual(t, compactPartMax, ledger.MaxPartitions-1, "every partition fits")
	at := ledger.RejectionAt{Position: 1<<39 - 1, Index: 4095}
	e, ok := rejectEntry(at, ledger.MaxPartitions-1)
	require.True(t, ok)
	p, known := entryPartition(e)
	assert.Equal(t, []any{at, ledger.MaxPartitions - 1, true}, []any{splitRejectEntry(e), p, known})
	e, ok = rejectEntry(ledger.RejectionAt{Position: 1}, -1)
	require.True(t, ok)
	_, known = entryPartition(e)
	assert.False(t, known)
	for _, bad := range []struct {
		at   ledger.RejectionAt
		part int
	}{{ledger.RejectionAt{}, 0}, {ledger.RejectionAt{Position: 1 << 39}, 0}, {ledger.RejectionAt{Position: 1, Index: 4096}, 0},
		{ledger.RejectionAt{Position: 1, Index: -1}, 0}, {ledger.RejectionAt{Position: 1}, compactPartMax + 1}, {ledger.RejectionAt{Position: 1}, -2}} {
		_, ok := rejectEntry(bad.at, bad.part)
		assert.False(t, ok, "%v", bad)
	}
}

// TestSnapshotCarriesCompactRejections: the whole snapshot and each partition's carry the compact
// rejections (a partition's only its own), and a v5 snapshot without that section (written by
// the build before it) still decodes, with none.
func TestSnapshotCarriesCompactRejections(t *testing.T) {
	t.Parallel()
	snaps := mapSnaps{}
	w := heldWriter(t, snaps, 0, 1)
	e0, ok := rejectEntry(ledger.RejectionAt{Position: 5, Index: 2}, 0)
	require.True(t, ok)
	e1, ok := rejectEntry(ledger.RejectionAt{Position: 6, Index: 0}, 1)
	require.True(t, ok)
	w.idem.rejCompact = map[uint64]uint64{commandKey("r0"): e0, commandKey("r1"): e1}

	whole, err := w.encodeSnapshot()
	require.NoError(t, err)
	st, err := decodeSnapshot(whole)
	require.NoError(t, err)
	assert.Equal(t, w.idem.rejCompact, st.rejCompact)
	r := heldWriter(t, snaps, 0, 1, 2, 3)
	r.install(st)
	assert.Equal(t, w.idem.rejCompact, r.idem.rejCompact)

	w.idem.rejCompact = nil
	before, err := w.encodeSnapshot()
	require.NoError(t, err)
	require.Equal(t, byte(0), before[len(before)-1])
	st, err = decodeSnapshot(before[:len(before)-1]) // as the previous build wrote it
	require.NoError(t, err)
	assert.Empty(t, st.rejCompact)
	_, err = decodeSnapshot(append(before[:len(before)-1:len(before)-1], 1, 2, 3)) // a section cut short
	assert.Error(t, err)

	w.idem.rejCompact = map[uint64]uint64{commandKey("r0"): e0, commandKey("r1"): e1}
	objs, err := w.encodePartitions(5, []int{0, 1})
	require.NoError(t, err)
	for _, o := range objs {
		require.NoError(t, snaps.Save(context.Background(), o.name, o.data))
	}
	one := heldWriter(t, snaps, 1)
	_, err = one.loadPartitions(context.Background(), false)
	require.NoError(t, err)
	assert.Equal(t, map[uint64]uint64{commandKey("r1"): e1}, one.idem.rejCompact, "partition 1's only")

	one.idem.rejCompact[commandKey("r0")] = e0
	po := heldOwner{1: true}
	one.opts.Owner = po
	one.forgetPartitions([]int{0})
	assert.Equal(t, map[uint64]uint64{commandKey("r1"): e1}, one.idem.rejCompact, "a partition handed over takes its rejections")
}

// heldOwner owns the partitions set (of 4).
type heldOwner map[int]bool

func (o heldOwner) Owns(id string) bool      { return o[ledger.PartitionOf(id, 4)] }
func (o heldOwner) OwnsEverything() bool     { return false }
func (o heldOwner) OwnsPartition(p int) bool { return o[p] }

// TestLoadPrunesAndRevokesCompactRejections: at the end of a log load, the compact rejections
// below the log's first position are pruned (here one restored with a snapshot, whose message
// the log has dropped); a revocation forgets the rejection at its place, in compact form too,
// and one naming another place changes nothing.
func TestLoadPrunesAndRevokesCompactRejections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := &memRejections{}
	st := &MemStore{}
	opts := Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()), Clock: clockAt{},
		NewID: func() string { return "id" }, Log: zerolog.Nop(), SweepInterval: time.Hour, Rejections: log, RejectionsRemembered: 1}
	w1, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, w1.Load(ctx))
	require.Nil(t, answered(t, w1, "buy", ledger.PurchaseLicense{LicenseID: "L", Source: "sales", Credits: decimal.NewFromInt(10), TermMonths: 12}).Err)
	require.Nil(t, answered(t, w1, "act", ledger.ActivateLicense{LicenseID: "L"}).Err)
	big := ledger.AllocateCredits{Feature: "file_security", Credits: decimal.NewFromInt(50)}
	for _, id := range []string{"r1", "r2", "r3", "r4"} { // positions 1-4
		require.Equal(t, ledger.CodeInsufficientCredits, answered(t, w1, id, big).Err.Code)
	}
	require.NoError(t, log.RevokeRejections(ctx, []ledger.Revocation{
		{CommandID: "r2", At: ledger.RejectionAt{Position: 2}},
		{CommandID: "r3", At: ledger.RejectionAt{Position: 9}}, // not where r3 lies
		{CommandID: "r4", At: ledger.RejectionAt{Position: 4}},
	}))
	log.mu.Lock()
	log.first = 2 // r1's message is gone
	log.mu.Unlock()

	w2, err := New(opts)
	require.NoError(t, err)
	old, ok := rejectEntry(ledger.RejectionAt{Position: 1}, -1)
	require.True(t, ok)
	w2.idem.rejCompact = map[uint64]uint64{commandKey("r1"): old} // as a snapshot restored it
	require.NoError(t, w2.loadRejections(ctx))
	assert.Equal(t, uint64(1), w2.stats.rejPruned.Load(), "r1")
	assert.Contains(t, w2.idem.rejCompact, commandKey("r3"), "r3's revocation names another place")
	assert.NotContains(t, w2.idem.rejCompact, commandKey("r2"), "revoked in compact form")
	assert.NotContains(t, w2.idem.rejected, "r4", "revoked in full")
	assert.Len(t, w2.idem.rejCompact, 1)
	assert.Empty(t, w2.idem.rejected)
}
