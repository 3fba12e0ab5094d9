package writer_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

var (
	buyL1  = map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L1", "source": "sales", "credits": "100"}
	actL1  = map[string]any{"command_id": "act", "account_id": "acme", "license_id": "L1"}
	allocA = func(id string) map[string]any {
		return map[string]any{"command_id": id, "account_id": "acme", "feature": "file_security", "credits": "10"}
	}
)

// forged is a well-formed, sealed event of acme, as a privileged client could publish it.
func forged(t *testing.T, version uint64, prev string, p events.Payload) []byte {
	t.Helper()
	raw, err := events.EncodePayload(p)
	require.NoError(t, err)
	env := events.Envelope{EventID: "forged-" + strconv.FormatUint(version, 10), Type: p.EventType(),
		SchemaVersion: events.SchemaVersion(p.EventType()), AccountID: "acme", Version: version,
		OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), CommandID: "forged", Payload: raw, PrevHash: prev}
	b, err := env.SealEncode()
	require.NoError(t, err)
	return b
}

// refusedAsBroken checks that a command on acme is refused with history_broken at position, and
// appends nothing.
func refusedAsBroken(t *testing.T, w *writer.Writer, st *jetstore.Store, position uint64, name string, cmd map[string]any) {
	t.Helper()
	before, err := st.Head(context.Background())
	require.NoError(t, err)
	res := do(t, w, name, cmd)
	require.NotNil(t, res.Err, "a command on a broken history must be refused, got version %d at %d", res.Version, res.Position)
	assert.ErrorIs(t, res.Err, ledger.ErrHistoryBroken)
	assert.Equal(t, strconv.FormatUint(position, 10), res.Err.Data["position"], res.Err.Message)
	after, err := st.Head(context.Background())
	require.NoError(t, err)
	assert.Equal(t, before, after, "nothing appended")
	recs, err := st.ReadAccount(context.Background(), "acme", 0)
	require.NoError(t, err)
	assert.Equal(t, position, recs[len(recs)-1].Position, "the account's chain was not continued")
}

// TestBrokenHistoryIsRefused: whatever breaks an account's stored chain (a foreign message, a
// version gap or a repeated version, a prev_hash or content hash that does not match), the writer refuses commands on
// that account with history_broken and the position, appends nothing to it (no fork, no second
// chain), also after a restart, and the other accounts go on.
func TestBrokenHistoryIsRefused(t *testing.T) {
	cases := []struct {
		name string
		data func(t *testing.T, v1 events.Event) []byte
	}{
		{"foreign message", func(*testing.T, events.Event) []byte { return []byte(`{"type":"CreditsAllocated","forged":true}`) }},
		{"event of another account", func(t *testing.T, v1 events.Event) []byte {
			return bytes.Replace(forged(t, 2, v1.Hash, events.LicenseActivated{LicenseID: "L1"}), []byte(`"account_id":"acme"`), []byte(`"account_id":"bob"`), 1)
		}},
		{"a second event at the last version", func(t *testing.T, v1 events.Event) []byte {
			return forged(t, 1, events.ZeroHash, events.LicenseActivated{LicenseID: "L1"})
		}},
		{"version gap", func(t *testing.T, v1 events.Event) []byte {
			return forged(t, 3, v1.Hash, events.LicenseActivated{LicenseID: "L1"})
		}},
		{"broken prev_hash link", func(t *testing.T, _ events.Event) []byte {
			return forged(t, 2, events.ZeroHash, events.LicenseActivated{LicenseID: "L1"})
		}},
		{"hash that does not match the content", func(t *testing.T, v1 events.Event) []byte {
			b := forged(t, 2, v1.Hash, events.CreditsAllocated{Feature: "file_security", Credits: decimal.RequireFromString("1")})
			return bytes.Replace(b, []byte(`"credits":"1"`), []byte(`"credits":"0.5"`), 1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			w, stop := r.start(t, nil, 0)
			defer stop()
			require.Nil(t, do(t, w, "purchase_license", buyL1).Err)
			recs, err := r.store.ReadAccount(context.Background(), "acme", 0)
			require.NoError(t, err)
			v1, err := events.Decode(recs[0].Data)
			require.NoError(t, err)

			// Given a message on acme's subject that does not continue its chain,
			nc, err := nats.Connect(r.url)
			require.NoError(t, err)
			defer nc.Close()
			js, err := jetstreamFor(nc)
			require.NoError(t, err)
			ack, err := js.Publish(context.Background(), jetstore.DefaultSubjects.Of("acme"), tc.data(t, v1))
			require.NoError(t, err)

			// when commands arrive (the first one finds it through its conflict re-read),
			// then they are refused, nothing is appended,
			refusedAsBroken(t, w, r.store, ack.Sequence, "activate_license", actL1)
			refusedAsBroken(t, w, r.store, ack.Sequence, "allocate_credits", allocA("x2"))
			// other accounts go on,
			require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "b1", "account_id": "bob", "license_id": "L2", "source": "sales", "credits": "5"}).Err)
			// and a restarted writer finds the same break while loading.
			stop()
			w2, stop2 := r.start(t, nil, 0)
			defer stop2()
			refusedAsBroken(t, w2, r.store, ack.Sequence, "allocate_credits", allocA("x3"))
		})
	}
}

// diskServer runs an embedded JetStream server on dir (random port); stop shuts it down and waits.
func diskServer(t *testing.T, dir string) (*jetstore.Store, string, func()) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, SyncAlways: true, NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	st, err := jetstore.Open(context.Background(), nc, jetstore.Config{})
	require.NoError(t, err)
	stop := func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() }
	t.Cleanup(stop)
	return st, ns.ClientURL(), stop
}

// TestAlteredMessageOnDiskIsAGap: one stored event altered in the store's files (nats-server's
// checksum then drops it) leaves a gap in its account's versions. The writer refuses that account
// (history_broken, naming where the gap shows) instead of deciding on the shorter history, and
// the other account goes on.
func TestAlteredMessageOnDiskIsAGap(t *testing.T) {
	dir := t.TempDir()
	r := &rig{clock: fixedClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}}
	st, _, stopServer := diskServer(t, dir)
	r.store = st
	w, stop := r.start(t, nil, 0)
	require.Nil(t, do(t, w, "purchase_license", buyL1).Err)                                                                                                          // 1
	require.Nil(t, do(t, w, "activate_license", actL1).Err)                                                                                                          // 2
	require.Nil(t, do(t, w, "purchase_license", map[string]any{"command_id": "b1", "account_id": "bob", "license_id": "L2", "source": "sales", "credits": "5"}).Err) // 3
	require.Nil(t, do(t, w, "allocate_credits", allocA("altered-one")).Err)                                                                                          // 4
	last := do(t, w, "allocate_credits", allocA("x2"))                                                                                                               // 5
	require.Nil(t, last.Err)
	stop()
	stopServer()

	// Alter one byte of acme's third event in the stream's message block.
	var blocks []string
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && filepath.Ext(p) == ".blk" && filepath.Base(filepath.Dir(filepath.Dir(p))) == jetstore.StreamName {
			blocks = append(blocks, p)
		}
		return err
	}))
	require.Len(t, blocks, 1)
	b, err := os.ReadFile(blocks[0])
	require.NoError(t, err)
	i := bytes.Index(b, []byte("altered-one"))
	require.Positive(t, i)
	b[i] = 'A'
	require.NoError(t, os.WriteFile(blocks[0], b, 0o600))

	st, _, _ = diskServer(t, dir)
	r.store = st
	_, err = st.ReadAt(context.Background(), 4)
	require.ErrorIs(t, err, ledger.ErrNoRecord, "the server dropped the altered message")
	w, stop = r.start(t, nil, 0)
	defer stop()
	refusedAsBroken(t, w, st, last.Position, "allocate_credits", allocA("x3"))
	require.Nil(t, do(t, w, "activate_license", map[string]any{"command_id": "b2", "account_id": "bob", "license_id": "L2"}).Err)
}
