package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

// audit consistency proves a later checkpoint extends an earlier one, and names a rewritten
// earlier checkpoint (same size, other root) or a later one that does not extend it, even when
// they carry the ledger's own signature (a leaked key).
func TestAuditConsistency(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, func(c *server.Config) { c.Checkpoints.Every, c.Checkpoints.Interval = -1, -1 })
	send := func(prefix string, n int) {
		for i := range n {
			acc := fmt.Sprintf("%s%d", prefix, i)
			_, err := l.Client.Send(t.Context(), "purchase_license", map[string]any{"account_id": acc, "command_id": acc + "-buy",
				"license_id": acc + "-L", "source": "sales", "credits": "100"})
			require.NoError(t, err)
		}
	}
	url, dir := l.ClientURL(), t.TempDir()
	// The ledger wrote its partitions' ownership records at start: the events follow them.
	base := l.Head()
	at := func(n uint64) string { return fmt.Sprint(base + n) }
	keyFile := filepath.Join(l.DataDir, audit.DefaultKeyFileName)
	vkey := audit.VerifierKeyFile(keyFile)
	file := func(name string) string { return filepath.Join(dir, name) }

	send("a", 3)
	out, err := runAudit(t, nil, "checkpoint", "--request", "--nats-url", url, "--public-key", vkey, "--out", file("old.txt"))
	require.NoError(t, err, out)
	send("b", 4)
	out, err = runAudit(t, nil, "checkpoint", "--request", "--nats-url", url, "--public-key", vkey, "--out", file("new.txt"))
	require.NoError(t, err, out)

	for _, args := range [][]string{{file("old.txt"), file("new.txt")}, {at(3), file("new.txt")}, {"1", at(7)}} {
		out, err = runAudit(t, nil, append([]string{"consistency", "--nats-url", url, "--public-key", vkey}, args...)...)
		require.NoError(t, err, "%v: %s", args, out)
		var rep consistencyReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.True(t, rep.OK)
		assert.Equal(t, base+7, rep.Size2)
	}

	key, _, err := audit.LoadOrCreateKey(keyFile, false)
	require.NoError(t, err)
	old, err := audit.ReadCheckpointFile(file("old.txt"))
	require.NoError(t, err)
	forge := func(name string, size uint64) string {
		root := old.Log.Root
		root[31] ^= 0x80
		note, err := audit.SignLogCheckpoint(audit.DefaultOrigin, size, root, key)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file(name), note, 0o600))
		return file(name)
	}
	rewritten := forge("rewritten.txt", old.Log.Size)
	out, err = runAudit(t, nil, "consistency", "--nats-url", url, "--public-key", vkey, rewritten, file("new.txt"))
	assert.Equal(t, exitAuditFailed, exitCode(err), out)
	assert.Contains(t, out, "rewritten.txt signs root")
	assert.Contains(t, out, "signed over another history (rewritten)")
	assert.Contains(t, out, "does not extend "+rewritten)

	elsewhere := forge("elsewhere.txt", base+7)
	out, err = runAudit(t, nil, "consistency", "--nats-url", url, "--public-key", vkey, file("old.txt"), elsewhere)
	assert.Equal(t, exitAuditFailed, exitCode(err), out)
	assert.Contains(t, out, elsewhere+" (size "+at(7)+") does not extend "+file("old.txt"))

	out, err = runAudit(t, nil, "consistency", "--nats-url", url, "--public-key", vkey, file("new.txt"), file("old.txt"))
	assert.Equal(t, exitAuditFailed, exitCode(err), out)

	// An auditor in another language: docs/examples/verify.py checks the replayed stream against
	// the checkpoint, and a proof, with the verifier key alone.
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import cryptography").Run() != nil {
		t.Skip("python3 with the cryptography package is not installed")
	}
	out, err = runAudit(t, nil, "replay", "--nats-url", url)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file("events.jsonl"), []byte(out), 0o600))
	out, err = runAudit(t, nil, "proof", "--nats-url", url, "--position", at(2))
	require.NoError(t, err, out)
	require.NoError(t, os.WriteFile(file("proof.json"), []byte(out), 0o600))
	script := filepath.Join("..", "..", "docs", "examples", "verify.py")
	got, err := exec.Command(py, script, "log", file("events.jsonl"), file("new.txt"), vkey).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Contains(t, string(got), "OK: 7 events, "+fmt.Sprint(base)+" ownership records, 7 accounts; positions 1 to "+at(7)+" are what creditledger/LEDGER signed")
	got, err = exec.Command(py, script, "proof", file("proof.json"), vkey).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Contains(t, string(got), "OK: the event at position "+at(2))
	got, err = exec.Command(py, script, "log", file("events.jsonl"), elsewhere, vkey).CombinedOutput()
	require.Error(t, err, "%s", got)
	assert.Contains(t, string(got), "do not give the root")
}

// The report audit consistency prints has the members docs/FORMAT.md shows, "findings": []
// included when all holds, so that a script in another language can read it as documented.
func TestConsistencyReportHasTheDocumentedMembers(t *testing.T) {
	t.Parallel()
	tree := audit.NewLogTree()
	tree.Append(audit.LogLeafHash([]byte(`{"n":1}`)))
	root := fmt.Sprintf("%x", tree.Root())
	p := audit.ConsistencyProof{Size1: 1, Size2: 1, Root1: root, Root2: root, Path: []string{}}
	rep := checkConsistency(p, consistencyArg{size: 1, name: "size 1"}, consistencyArg{size: 1, name: "size 1"})
	require.True(t, rep.OK, "%v", rep.Findings)
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var members map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &members))
	for _, m := range []string{"ok", "size1", "size2", "root1", "root2", "consistency_path", "findings"} {
		assert.Contains(t, members, m, "%s", b)
	}
	assert.JSONEq(t, `[]`, string(members["findings"]))
	assert.JSONEq(t, `[]`, string(members["consistency_path"]))
}
