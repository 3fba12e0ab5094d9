package audit_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	}))
}

// bareServer serves a copied data directory from a plain nats-server, with no ledger running.
func bareServer(t *testing.T, dataDir string) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dataDir, "jetstream"), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// tampered is an offline edit of the LEDGER stream: the messages to store, in order, and the
// positions to delete afterwards (which leaves gaps in the sequence).
type tampered struct {
	msgs   []audit.Message
	delete []uint64
}

// tamperedCopy copies a stopped ledger's data directory, serves it from a bare nats-server, and
// replaces the LEDGER stream by the edited message sequence. LEDGER denies deletes, so the only
// way to remove or reorder is this: recreate the stream from a doctored copy of its messages.
func tamperedCopy(t *testing.T, dataDir string, edit func([]audit.Message) tampered) string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, dataDir, dir)
	url := bareServer(t, dir)
	nc, src := connect(t, url)
	var orig []audit.Message
	_, err := src.Scan(ctxT(t), audit.Filter{}, func(m audit.Message) error {
		orig = append(orig, m)
		return nil
	})
	require.NoError(t, err)
	tm := edit(orig)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(ctxT(t), jetstore.StreamName))
	cfg := jetstore.StreamConfig(1)
	cfg.DenyDelete = len(tm.delete) == 0
	stream, err := js.CreateStream(ctxT(t), cfg)
	require.NoError(t, err)
	for _, m := range tm.msgs {
		_, err := js.Publish(ctxT(t), m.Subject, m.Data)
		require.NoError(t, err)
	}
	for _, p := range tm.delete {
		require.NoError(t, stream.DeleteMsg(ctxT(t), p))
	}
	return url
}

// find returns the index of an account's event of a version (the ownership records between
// the events belong to no account).
func find(t *testing.T, msgs []audit.Message, account string, version uint64) int {
	t.Helper()
	for i, m := range msgs {
		if m.IsFence() {
			continue
		}
		ev, err := events.Decode(m.Data)
		require.NoError(t, err)
		if ev.AccountID == account && ev.Version == version {
			return i
		}
	}
	t.Fatalf("no event %s version %d", account, version)
	return -1
}

// reencode applies edit to a message's envelope and stores it again, resealed if asked.
func reencode(t *testing.T, m audit.Message, reseal bool, edit func(*events.Envelope)) audit.Message {
	t.Helper()
	ev, err := events.Decode(m.Data)
	require.NoError(t, err)
	e := ev.Envelope
	edit(&e)
	if reseal {
		require.NoError(t, e.Seal())
	}
	m.Data, err = events.Encode(&e)
	require.NoError(t, err)
	return m
}

func morePayload(e *events.Envelope) {
	e.Payload = json.RawMessage(strings.Replace(string(e.Payload), `"credits":"`, `"credits":"9`, 1))
}

func TestVerifyReportsOfflineTampering(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	base := l.Head() // the ownership records the ledger wrote at start; the events follow them
	generate(t, l, "acc", 4, 3)
	cp := requestCheckpoint(t, l.NC)
	require.Equal(t, base+32, cp.Size)
	pub := ledgerKey(t, l)
	dataDir := l.DataDir
	l.Stop()

	type want struct {
		kind    string
		account string
		version uint64
		// position of the first finding; linked is its LinkedPosition.
		position, linked func(orig []audit.Message) uint64
	}
	pos := func(account string, version uint64) func([]audit.Message) uint64 {
		return func(orig []audit.Message) uint64 { return orig[find(t, orig, account, version)].Position }
	}
	cases := []struct {
		name string
		edit func(orig []audit.Message) tampered
		want *want
	}{
		{"untouched copy", func(orig []audit.Message) tampered { return tampered{msgs: orig} }, nil},
		{"deleted message leaves a gap", func(orig []audit.Message) tampered {
			return tampered{msgs: orig, delete: []uint64{pos("acc001", 3)(orig)}}
		}, &want{kind: audit.KindMissing, account: "acc001", position: pos("acc001", 3)}},
		{"removed message, the rest renumbered", func(orig []audit.Message) tampered {
			i := find(t, orig, "acc001", 3)
			return tampered{msgs: append(append([]audit.Message(nil), orig[:i]...), orig[i+1:]...)}
		}, &want{kind: audit.KindVersionGap, account: "acc001", version: 4,
			position: func(orig []audit.Message) uint64 { return pos("acc001", 4)(orig) - 1 }}},
		{"edited, hash left as it was", func(orig []audit.Message) tampered {
			i := find(t, orig, "acc001", 3)
			orig[i] = reencode(t, orig[i], false, morePayload)
			return tampered{msgs: orig}
		}, &want{kind: audit.KindHashMismatch, account: "acc001", version: 3, position: pos("acc001", 3)}},
		{"edited and re-hashed", func(orig []audit.Message) tampered {
			i := find(t, orig, "acc001", 3)
			orig[i] = reencode(t, orig[i], true, morePayload)
			return tampered{msgs: orig}
		}, &want{kind: audit.KindBrokenLink, account: "acc001", version: 4, position: pos("acc001", 4), linked: pos("acc001", 3)}},
		{"re-ordered within an account", func(orig []audit.Message) tampered {
			i, j := find(t, orig, "acc002", 2), find(t, orig, "acc002", 3)
			orig[i].Data, orig[j].Data = orig[j].Data, orig[i].Data
			return tampered{msgs: orig}
		}, &want{kind: audit.KindVersionGap, account: "acc002", version: 3, position: pos("acc002", 2)}},
		{"re-ordered across accounts", func(orig []audit.Message) tampered {
			for i := 0; i+1 < len(orig); i++ {
				// Two events of different accounts (not the start's ownership records).
				if !orig[i].IsFence() && !orig[i+1].IsFence() && orig[i].Subject != orig[i+1].Subject {
					orig[i], orig[i+1] = orig[i+1], orig[i]
					break
				}
			}
			return tampered{msgs: orig}
		}, &want{kind: audit.KindCheckpointMismatch, position: func([]audit.Message) uint64 { return base + 32 }}},
		{"truncated", func(orig []audit.Message) tampered { return tampered{msgs: orig[:base+30]} },
			&want{kind: audit.KindTruncated, position: func([]audit.Message) uint64 { return base + 31 }}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var orig []audit.Message
			url := tamperedCopy(t, dataDir, func(msgs []audit.Message) tampered {
				orig = append([]audit.Message(nil), msgs...)
				return c.edit(msgs)
			})
			_, src := connect(t, url)
			rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}})
			require.NoError(t, err)
			trusted, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{TrustedLog: &cp, PublicKeys: []ed25519.PublicKey{pub}})
			require.NoError(t, err)
			if c.want == nil {
				assert.True(t, rep.OK, "%v", rep.Findings)
				assert.True(t, trusted.OK, "%v", trusted.Findings)
				assert.Equal(t, fmt.Sprintf("%x", cp.Root), rep.LogRoot)
				return
			}
			require.False(t, rep.OK)
			first, _ := rep.First()
			t.Log(first)
			assert.Equal(t, c.want.kind, first.Kind)
			assert.Equal(t, c.want.account, first.AccountID)
			assert.Equal(t, c.want.version, first.Version)
			assert.Equal(t, c.want.position(orig), first.Position)
			if c.want.linked != nil {
				assert.Equal(t, c.want.linked(orig), first.LinkedPosition)
			}
			assert.False(t, trusted.OK, "the trusted checkpoint catches it too")
		})
	}
}

func TestVerifyReportsForgedEvents(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	generate(t, l, "f", 2, 2)
	forger, err := nats.Connect(l.ClientURL(), nats.Name("forger"))
	require.NoError(t, err)
	defer forger.Close()
	js, err := jetstream.New(forger)
	require.NoError(t, err)
	_, src := connect(t, l.ClientURL())
	var f000 []audit.Message
	_, err = src.Scan(ctxT(t), audit.Filter{AccountID: "f000"}, func(m audit.Message) error {
		f000 = append(f000, m)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, f000, 6)
	publish := func(data []byte) uint64 {
		ack, err := js.Publish(ctxT(t), jetstore.DefaultSubjects.Of("f000"), data)
		require.NoError(t, err)
		return ack.Sequence
	}
	// A stored event published again, an edited copy appended as the next version without a
	// valid hash, and a correctly hashed event that does not link to its predecessor.
	replayed := publish(f000[1].Data)
	edited := reencode(t, f000[5], false, func(e *events.Envelope) {
		e.Version, e.PrevHash = 7, mustDecode(t, f000[5].Data).Hash
		morePayload(e)
	})
	editedPos := publish(edited.Data)
	unlinked := reencode(t, f000[5], true, func(e *events.Envelope) { e.Version, e.PrevHash = 8, events.ZeroHash })
	unlinkedPos := publish(unlinked.Data)

	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{ledgerKey(t, l)}})
	require.NoError(t, err)
	require.False(t, rep.OK)
	require.Len(t, rep.Findings, 3, "%v", rep.Findings)
	assert.Equal(t, audit.Finding{Kind: audit.KindVersionRepeat, Position: replayed, AccountID: "f000", Version: 2,
		Reason: rep.Findings[0].Reason}, rep.Findings[0])
	assert.Equal(t, audit.KindHashMismatch, rep.Findings[1].Kind)
	assert.Equal(t, editedPos, rep.Findings[1].Position)
	assert.Equal(t, uint64(7), rep.Findings[1].Version)
	assert.Equal(t, audit.KindBrokenLink, rep.Findings[2].Kind)
	assert.Equal(t, unlinkedPos, rep.Findings[2].Position)
	assert.Equal(t, editedPos, rep.Findings[2].LinkedPosition)

	// The service refuses to sign a history that fails verification.
	require.Eventually(t, func() bool {
		msg, err := l.NC.Request(audit.CheckpointRequestSubject, nil, 10*time.Second)
		return err == nil && strings.Contains(string(msg.Data), `"code":"internal"`) &&
			strings.Contains(string(msg.Data), "fails verification")
	}, 20*time.Second, 50*time.Millisecond)
}

func mustDecode(t *testing.T, data []byte) events.Event {
	t.Helper()
	ev, err := events.Decode(data)
	require.NoError(t, err)
	return ev
}
