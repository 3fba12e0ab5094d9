package writer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

type rig struct {
	url   string
	store *jetstore.Store
	snaps *jetstore.Snapshots
	clock fixedClock
	// rejections, when set, is given to every writer the rig starts.
	rejections writer.RejectionLog
}

// fixedClock is the writer's clock in these tests: time does not matter to them.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func newRig(t *testing.T) *rig {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	snaps, err := jetstore.OpenSnapshots(ctx, st.JetStream(), 1)
	require.NoError(t, err)
	return &rig{url: ns.ClientURL(), store: st, snaps: snaps, clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}}
}

func jetstreamFor(nc *nats.Conn) (jetstream.JetStream, error) { return jetstream.New(nc) }

// start loads and runs a writer; the returned stop waits for Run to return.
func (r *rig) start(t *testing.T, snaps writer.SnapshotStore, every uint64) (*writer.Writer, func()) {
	t.Helper()
	w := newWriter(t, r, r.store, writer.Options{Rejections: r.rejections, Snapshots: snaps, SnapshotEvery: every})
	return w, run(t, w)
}

// startSecond runs another writer on the same stream with no snapshots: two writers that both
// believe they own every account (what leases prevent), so that conflicts happen.
func (r *rig) startSecond(t *testing.T) (*writer.Writer, func()) { return r.start(t, nil, 0) }

// newWriter builds and loads a writer on st without running it.
func newWriter(t *testing.T, r *rig, st ledger.Store, o writer.Options) *writer.Writer {
	t.Helper()
	o.Store, o.Rules, o.Log, o.SweepInterval = st, ledger.NewRules(ledger.DefaultCatalogue()), zerolog.Nop(), time.Hour
	if o.Clock == nil {
		o.Clock = r.clock
	}
	o.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	w, err := writer.New(o)
	require.NoError(t, err)
	require.NoError(t, w.Load(context.Background()))
	return w
}

func run(t *testing.T, w *writer.Writer) func() {
	ctx, cancel := context.WithCancel(context.Background())
	go w.Run(ctx)
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-w.Stopped() }) }
	t.Cleanup(stop)
	return stop
}

// submitted parses and queues a command; the returned channel receives its result.
func submitted(t *testing.T, w *writer.Writer, name string, body map[string]any) <-chan writer.Result {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	p, err := commands.Parse(name, raw)
	require.NoError(t, err)
	done := make(chan writer.Result, 1)
	require.NoError(t, w.Submit(submit.Request{CommandID: p.CommandID, AccountID: p.AccountID, BodyHash: p.BodyHash,
		Command: p.Command, Reply: func(res writer.Result) { done <- res }}))
	return done
}

func result(t *testing.T, c <-chan writer.Result) writer.Result {
	t.Helper()
	select {
	case res := <-c:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no reply within 10s")
		return writer.Result{}
	}
}

// do submits one parsed command and waits for its result.
func do(t *testing.T, w *writer.Writer, name string, body map[string]any) writer.Result {
	t.Helper()
	return result(t, submitted(t, w, name, body))
}

func states(w *writer.Writer) map[string]string {
	out := map[string]string{}
	w.EachAccount(func(id string, a ledger.Account) {
		b, _ := json.Marshal(a)
		out[id] = string(b)
	})
	return out
}

func TestSnapshotRestoresStateAndIdempotency(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 7)
	var first writer.Result
	for i := 0; i < 5; i++ {
		acct := fmt.Sprintf("acct-%d", i)
		lic := fmt.Sprintf("lic-%d", i)
		require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "p" + acct, "account_id": acct, "license_id": lic, "source": "sales", "credits": "100"}).Err)
		require.Nil(t, do(t, w1, "activate_license", map[string]any{"command_id": "a" + acct, "account_id": acct, "license_id": lic}).Err)
		res := do(t, w1, "allocate_credits", map[string]any{"command_id": "x" + acct, "account_id": acct, "feature": "file_security", "credits": "12.5"})
		require.Nil(t, res.Err)
		if i == 0 {
			first = res
		}
	}
	// A business rejection is remembered across a clean restart (it is in the snapshot).
	rejected := do(t, w1, "allocate_credits", map[string]any{"command_id": "too-much", "account_id": "acct-1", "feature": "file_security", "credits": "1000"})
	require.NotNil(t, rejected.Err)
	// An account with no license at all (only a PAYG contract) must survive the snapshot whole.
	require.Nil(t, do(t, w1, "purchase_payg_contract", map[string]any{"command_id": "pg", "account_id": "payg-only", "contract_id": "P1"}).Err)
	stop1()
	want, wantHead := states(w1), w1.Head()
	require.Contains(t, want["payg-only"], `"P1"`)
	data, err := r.snaps.Load(context.Background(), "writer-v5")
	require.NoError(t, err)
	require.NotNil(t, data, "a snapshot is saved at shutdown")

	// A restart from the snapshot and one from a full replay agree with the first writer.
	w2, stop2 := r.start(t, r.snaps, 7)
	defer stop2()
	w3, stop3 := r.start(t, nil, 7)
	defer stop3()
	assert.Equal(t, wantHead, w2.Head())
	assert.Equal(t, want, states(w2))
	assert.Equal(t, want, states(w3))

	// Idempotency survives the snapshot: the same command returns the first reply, appending nothing.
	again := do(t, w2, "allocate_credits", map[string]any{"command_id": "xacct-0", "account_id": "acct-0", "feature": "file_security", "credits": "12.5"})
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Events, again.Events)
	assert.Equal(t, first.Version, again.Version)
	assert.Equal(t, first.Position, again.Position)
	assert.Equal(t, wantHead, w2.Head())
	assert.Equal(t, uint64(1), w2.Stats().ReadBack, "the snapshot compacted the record: it was read back from the stream")
	fromReplay := do(t, w3, "allocate_credits", map[string]any{"command_id": "xacct-0", "account_id": "acct-0", "feature": "file_security", "credits": "12.5"})
	assert.True(t, fromReplay.Replayed)
	assert.Equal(t, first.Events, fromReplay.Events)
	assert.Equal(t, wantHead, w3.Head())
	reused := do(t, w2, "allocate_credits", map[string]any{"command_id": "xacct-0", "account_id": "acct-0", "feature": "file_security", "credits": "1"})
	require.NotNil(t, reused.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, reused.Err.Code)
	replayedRejection := do(t, w2, "allocate_credits", map[string]any{"command_id": "too-much", "account_id": "acct-1", "feature": "file_security", "credits": "1000"})
	require.NotNil(t, replayedRejection.Err)
	assert.True(t, replayedRejection.Replayed)
	assert.Equal(t, rejected.Err, replayedRejection.Err)
	// Uniqueness survives too: another account cannot buy lic-3.
	taken := do(t, w2, "purchase_license", map[string]any{"command_id": "steal", "account_id": "thief", "license_id": "lic-3", "source": "sales", "credits": "1"})
	require.NotNil(t, taken.Err)
	assert.Equal(t, ledger.CodeAlreadyExists, taken.Err.Code)
}

// brokenSnapshots serves garbage: the writer must fall back to a full replay.
type brokenSnapshots struct{}

func (brokenSnapshots) Save(context.Context, string, []byte) error { return nil }
func (brokenSnapshots) Load(context.Context, string) ([]byte, error) {
	return []byte("creditledger-writer-snapshot-v3\n\x00\x01garbage"), nil
}

func TestUnreadableSnapshotFallsBackToReplay(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.start(t, nil, 0)
	require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "c1", "account_id": "a", "license_id": "l", "source": "sales", "credits": "5"}).Err)
	stop1()
	w2, stop2 := r.start(t, brokenSnapshots{}, 0)
	defer stop2()
	assert.Equal(t, states(w1), states(w2))
	assert.Equal(t, w1.Head(), w2.Head())
}

// TestLoadHintsVersionsToTheStore: a writer that loads accounts (from its snapshot and the
// records after it) tells the store where each stands, so that the first command on each after
// a restart costs no read of the account's last message (one request to the stream leader per
// account otherwise: issue 12's store port speaks versions, and the JetStream store maps them to
// positions).
func TestLoadHintsVersionsToTheStore(t *testing.T) {
	r := newRig(t)
	w1, stop1 := r.start(t, r.snaps, 4)
	const n = 6
	for i := 0; i < n; i++ {
		acct := fmt.Sprintf("acct-%d", i)
		require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "p" + acct, "account_id": acct, "license_id": "lic-" + acct, "source": "sales", "credits": "100"}).Err)
	}
	stop1()

	nc, err := nats.Connect(r.url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	fresh, err := jetstore.Open(context.Background(), nc, jetstore.Config{}) // a restarted process: it knows no version
	require.NoError(t, err)
	// A copy of every leader read: the read loop queues it before it handles the PONG of a later
	// Flush, so Pending counts them all then.
	leaderReads, err := nc.SubscribeSync("$JS.API.STREAM.MSG.GET.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	w2 := newWriter(t, r, fresh, writer.Options{Snapshots: r.snaps, SnapshotEvery: 4})
	run(t, w2)
	for i := 0; i < n; i++ {
		acct := fmt.Sprintf("acct-%d", i)
		res := do(t, w2, "activate_license", map[string]any{"command_id": "a" + acct, "account_id": acct, "license_id": "lic-" + acct})
		require.Nil(t, res.Err)
		assert.EqualValues(t, 2, res.Version)
	}
	require.NoError(t, nc.Flush())
	reads, _, err := leaderReads.Pending()
	require.NoError(t, err)
	assert.Zero(t, reads, "no account's last message was read before its first append")
}
