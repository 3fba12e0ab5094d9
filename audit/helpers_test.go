package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// requestCheckpoint asks the service for a checkpoint now.
func requestCheckpoint(t testing.TB, nc *nats.Conn) audit.Checkpoint {
	t.Helper()
	msg, err := nc.RequestWithContext(ctxT(t), audit.CheckpointRequestSubject, nil)
	require.NoError(t, err)
	cp, err := audit.ParseCheckpoint(msg.Data)
	require.NoError(t, err, "reply %s", msg.Data)
	return cp
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
