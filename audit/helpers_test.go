package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect opens the auditor's own connection (never the service's) and a source on it.
func connect(t testing.TB, url string) (*nats.Conn, *audit.Source) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("auditor"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	src, err := audit.NewSource(ctxT(t), nc)
	require.NoError(t, err)
	return nc, src
}

// sent is what the command replies said was appended.
type sent struct {
	AccountID string
	Version   uint64
	Type      string
}

// history records every appended event by position, from the command replies.
type history struct {
	mu     sync.Mutex
	events map[uint64]sent
}

func (h *history) record(t testing.TB, a commands.Accepted) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range a.Events {
		h.events[e.Position] = sent{AccountID: a.AccountID, Version: e.Version, Type: e.Type}
	}
}

func send(t testing.TB, l *testledger.Ledger, h *history, name string, body map[string]any) commands.Accepted {
	t.Helper()
	if _, ok := body["command_id"]; !ok {
		body["command_id"] = fmt.Sprintf("%s-%s-%d", body["account_id"], name, time.Now().UnixNano())
	}
	a, err := l.Client.Send(ctxT(t), name, body)
	require.NoError(t, err, "%s %v", name, body)
	if h != nil {
		h.record(t, a)
	}
	return a
}

// generate appends about accounts*(2+2*pairs) events: per account a license, its activation,
// then allocate/release pairs, the accounts concurrently.
func generate(t testing.TB, l *testledger.Ledger, prefix string, accounts, pairs int) *history {
	t.Helper()
	h := &history{events: map[uint64]sent{}}
	var wg sync.WaitGroup
	for i := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := fmt.Sprintf("%s%03d", prefix, i)
			send(t, l, h, "purchase_license", map[string]any{"account_id": acc, "command_id": acc + "-buy",
				"license_id": acc + "-L", "source": "sales", "credits": "1000"})
			send(t, l, h, "activate_license", map[string]any{"account_id": acc, "command_id": acc + "-act", "license_id": acc + "-L"})
			for j := range pairs {
				send(t, l, h, "allocate_credits", map[string]any{"account_id": acc, "command_id": fmt.Sprintf("%s-a%d", acc, j),
					"feature": "container_security", "credits": fmt.Sprintf("%d.5", j+1)})
				send(t, l, h, "release_credits", map[string]any{"account_id": acc, "command_id": fmt.Sprintf("%s-r%d", acc, j),
					"feature": "container_security", "credits": "0.25"})
			}
		}()
	}
	wg.Wait()
	return h
}

// requestCheckpoint asks the service for a checkpoint now: a format-2 one, signature unchecked.
func requestCheckpoint(t testing.TB, nc *nats.Conn) audit.LogCheckpoint {
	t.Helper()
	msg, err := nc.RequestWithContext(ctxT(t), audit.CheckpointRequestSubject, nil)
	require.NoError(t, err)
	cp, err := audit.ParseLogCheckpoint(msg.Data, nil)
	require.NoError(t, err, "reply %s", msg.Data)
	return cp
}

// ledgerSigningKey is the private key the test ledger generated in its data directory.
func ledgerSigningKey(t testing.TB, l *testledger.Ledger) ed25519.PrivateKey {
	t.Helper()
	key, _, err := audit.LoadOrCreateKey(l.DataDir+"/"+audit.DefaultKeyFileName, false)
	require.NoError(t, err)
	return key
}

// legacyCheckpoint signs the stream as it stands as the next format-1 checkpoint (after prev,
// nil for the first) with the ledger's key and stores it, as the ledger did before format 2:
// a store with old checkpoints.
func legacyCheckpoint(t testing.TB, l *testledger.Ledger, prev *audit.Checkpoint) audit.Checkpoint {
	t.Helper()
	_, src := connect(t, l.ClientURL())
	chain := audit.NewChain()
	_, err := src.Scan(ctxT(t), audit.Filter{}, func(m audit.Message) error {
		require.Empty(t, chain.Apply(m))
		return nil
	})
	require.NoError(t, err)
	cp := audit.NewCheckpoint(prev, chain, testledger.Epoch, ledgerSigningKey(t, l))
	storeRaw(t, l.ClientURL(), mustJSON(t, cp), cp.Seq-1)
	return cp
}

// storeRaw publishes bytes straight into the checkpoint stream as message afterSeq+1, as anyone
// with publish rights could.
func storeRaw(t testing.TB, url string, data []byte, afterSeq uint64) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("forger"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.Publish(ctxT(t), audit.CheckpointSubject, data, jetstream.WithExpectLastSequence(afterSeq))
	require.NoError(t, err)
}

// ledgerKey is the public key the test ledger generated in its data directory.
func ledgerKey(t testing.TB, l *testledger.Ledger) ed25519.PublicKey {
	t.Helper()
	pub, err := audit.ReadPublicKey(audit.PublicKeyFile(l.DataDir + "/" + audit.DefaultKeyFileName))
	require.NoError(t, err)
	return pub
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func httpGet(t testing.TB, url string) ([]byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
