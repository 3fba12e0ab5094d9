package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// The audit commands over a stream with a partition ownership record between the events:
// verify counts it, consistency proves the checkpoint after it extends the one before, proof
// proves the position after it, and docs/examples/verify.py checks the export (and fails on a
// tampered record line).
func TestAuditCommandsOverOwnershipRecords(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, func(c *server.Config) { c.Checkpoints.Every, c.Checkpoints.Interval = -1, -1 })
	url, dir := l.ClientURL(), t.TempDir()
	base := l.Head() // the ledger's own ownership records, written at start
	file := func(name string) string { return filepath.Join(dir, name) }
	vkey := audit.VerifierKeyFile(filepath.Join(l.DataDir, audit.DefaultKeyFileName))
	buy := func(acc string) {
		_, err := l.Client.Send(t.Context(), "purchase_license", map[string]any{"account_id": acc, "command_id": acc + "-buy",
			"license_id": acc + "-L", "source": "sales", "credits": "100"})
		require.NoError(t, err)
	}
	buy("a0")
	buy("a1")
	out, err := runAudit(t, nil, "checkpoint", "--request", "--nats-url", url, "--public-key", vkey, "--out", file("old.txt"))
	require.NoError(t, err, out)
	fence := publishFence(t, url, 5)
	buy("a2")
	out, err = runAudit(t, nil, "checkpoint", "--request", "--nats-url", url, "--public-key", vkey, "--out", file("new.txt"))
	require.NoError(t, err, out)

	out, err = runAudit(t, nil, "verify", "--nats-url", url, "--public-key", vkey)
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("events: 3\npartition ownership records: %d\naccounts: 3\nhead position: %d\n", base+1, base+4))
	out, err = runAudit(t, nil, "consistency", "--nats-url", url, "--public-key", vkey, file("old.txt"), file("new.txt"))
	require.NoError(t, err, out)
	out, err = runAudit(t, nil, "proof", "--nats-url", url, "--position", fmt.Sprint(fence+1), "--public-key", vkey)
	require.NoError(t, err, out)
	require.NoError(t, os.WriteFile(file("proof.json"), []byte(out), 0o600))
	out, err = runAudit(t, nil, "proof", "--verify", file("proof.json"), "--public-key", vkey)
	require.NoError(t, err, out)

	out, err = runAudit(t, nil, "export", "--nats-url", url, "--format", "jsonl", "--out", file("export.jsonl"))
	require.NoError(t, err, out)
	replay, err := runAudit(t, nil, "replay", "--nats-url", url)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file("replay.jsonl"), []byte(replay), 0o600))

	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import cryptography").Run() != nil {
		t.Skip("python3 with the cryptography package is not installed")
	}
	script := filepath.Join("..", "..", "docs", "examples", "verify.py")
	got, err := exec.Command(py, script, "export", file("export.jsonl"), file("new.txt"), vkey, fmt.Sprint(ledger.DefaultPartitions)).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Contains(t, string(got), fmt.Sprintf("OK: 3 events, %d ownership records, 3 accounts; positions 1 to %d are what creditledger/LEDGER signed", base+1, base+4))
	got, err = exec.Command(py, script, "log", file("replay.jsonl"), file("new.txt"), vkey).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Contains(t, string(got), fmt.Sprintf("OK: 3 events, %d ownership records, 3 accounts; positions 1 to %d", base+1, base+4))
	got, err = exec.Command(py, script, "proof", file("proof.json"), vkey).CombinedOutput()
	require.NoError(t, err, "%s", got)

	export, err := os.ReadFile(file("export.jsonl"))
	require.NoError(t, err)
	tampered := strings.Replace(string(export), `"owner":"node-a"`, `"owner":"node-z"`, 1)
	require.NotEqual(t, string(export), tampered)
	require.NoError(t, os.WriteFile(file("tampered.jsonl"), []byte(tampered), 0o600))
	got, err = exec.Command(py, script, "export", file("tampered.jsonl"), file("new.txt"), vkey).CombinedOutput()
	require.Error(t, err, "%s", got)
	assert.Contains(t, string(got), "FAILED")
	tampered = movedRecord(t, string(export), `"owner":"node-a"`, `"subject":"ledger.fence.5"`, `"subject":"ledger.fence.6"`)
	require.NoError(t, os.WriteFile(file("moved.jsonl"), []byte(tampered), 0o600))
	got, err = exec.Command(py, script, "export", file("moved.jsonl"), file("old.txt"), vkey).CombinedOutput()
	require.Error(t, err, "%s", got)
	assert.Contains(t, string(got), fmt.Sprintf("FAILED at position %d", fence))

	// The store is partitioned: a1's event is under its partition's subject. Moved to the next
	// partition (the stored bytes, so every hash and the root, unchanged) it fails, given the
	// partition count or not (the ownership records before it give it); moved to the account
	// subject of an older store it fails too.
	p := ledger.PartitionOf("a1", ledger.DefaultPartitions)
	own := fmt.Sprintf(`"subject":"ledger.events.%d.a1"`, p)
	require.Contains(t, string(export), own)
	for name, c := range map[string]struct {
		subject string
		args    []string
	}{
		"another partition, count given": {fmt.Sprintf(`"subject":"ledger.events.%d.a1"`, (p+1)%ledger.DefaultPartitions), []string{fmt.Sprint(ledger.DefaultPartitions)}},
		"another partition":              {fmt.Sprintf(`"subject":"ledger.events.%d.a1"`, (p+1)%ledger.DefaultPartitions), nil},
		"an account subject":             {`"subject":"ledger.events.a1"`, nil},
	} {
		tampered := strings.Replace(string(export), own, c.subject, 1)
		name := file(strings.ReplaceAll(name, " ", "-") + ".jsonl")
		require.NoError(t, os.WriteFile(name, []byte(tampered), 0o600))
		got, err = exec.Command(py, append([]string{script, "export", name, file("new.txt"), vkey}, c.args...)...).CombinedOutput()
		require.Error(t, err, "%s", got)
		assert.Contains(t, string(got), fmt.Sprintf("FAILED at position %d, account a1, version 1: stored under subject ledger.events.", base+2))
		assert.Contains(t, string(got), "(wrong_subject)")
	}
}

// movedRecord replaces old with new in the one export line that holds mark (the test's record,
// not the ledger's own record of the same partition).
func movedRecord(t *testing.T, export, mark, old, new string) string {
	t.Helper()
	lines := strings.Split(export, "\n")
	for i, line := range lines {
		if strings.Contains(line, mark) {
			require.Contains(t, line, old)
			lines[i] = strings.Replace(line, old, new, 1)
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("no line holds %s", mark)
	return ""
}

// publishFence stores partition p's ownership record in the LEDGER stream and returns its
// position.
func publishFence(t *testing.T, url string, p int) uint64 {
	t.Helper()
	data, err := ledger.EncodeFence(ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: 1, Owner: "node-a",
		Partition: p, Partitions: ledger.DefaultPartitions, Time: testledger.Epoch.UTC()})
	require.NoError(t, err)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ack, err := js.Publish(t.Context(), jetstore.FenceSubject(p), data)
	require.NoError(t, err)
	return ack.Sequence
}
