package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// runAudit runs `creditledger audit ARGS...` and returns what it printed on stdout.
func runAudit(t *testing.T, stdout *os.File, args ...string) (string, error) {
	t.Helper()
	cmd := auditCmd()
	var out, errb bytes.Buffer
	if stdout != nil {
		cmd.SetOut(stdout)
	} else {
		cmd.SetOut(&out)
	}
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func exitCode(err error) int {
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	if err != nil {
		return exitError
	}
	return 0
}

func TestAuditCommands(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	ctx := context.Background()
	// The ledger wrote its partitions' ownership records at start: the events follow them.
	base := l.Head()
	at := func(n uint64) string { return fmt.Sprint(base + n) }
	for i, acc := range []string{"a1", "a2", "a3"} {
		for _, c := range []struct {
			name string
			body map[string]any
		}{
			{"purchase_license", map[string]any{"license_id": acc + "-L", "source": "sales", "credits": "500"}},
			{"activate_license", map[string]any{"license_id": acc + "-L"}},
			{"allocate_credits", map[string]any{"feature": "file_security", "credits": fmt.Sprint(10 * (i + 1))}},
		} {
			c.body["account_id"], c.body["command_id"] = acc, acc+c.name
			_, err := l.Client.Send(ctx, c.name, c.body)
			require.NoError(t, err)
		}
	}
	url := l.ClientURL()
	dir := t.TempDir()
	pub := audit.VerifierKeyFile(filepath.Join(l.DataDir, audit.DefaultKeyFileName))

	out, err := runAudit(t, nil, "verify", "--nats-url", url)
	require.NoError(t, err, out)
	assert.Contains(t, out, "OK: the stored history verifies")
	assert.Contains(t, out, "events: 9\npartition ownership records: "+fmt.Sprint(base)+"\naccounts: 3\nhead position: "+at(9)+"\nlog tree root: ")

	cpFile := filepath.Join(dir, "cp.txt")
	out, err = runAudit(t, nil, "checkpoint", "--request", "--nats-url", url, "--public-key", pub, "--out", cpFile)
	require.NoError(t, err, out)
	saved, err := audit.ReadCheckpointFile(cpFile)
	require.NoError(t, err)
	require.NotNil(t, saved.Log, "a format-2 checkpoint")
	assert.Equal(t, base+9, saved.Position())
	out, err = runAudit(t, nil, "checkpoint", "--list", "--nats-url", url)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out, "\n"))

	out, err = runAudit(t, nil, "verify", "--nats-url", url, "--trusted-checkpoint", cpFile, "--public-key", pub, "--json")
	require.NoError(t, err, out)
	var rep audit.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.True(t, rep.OK)
	assert.Equal(t, uint64(1), rep.Trusted)

	out, err = runAudit(t, nil, "proof", "--nats-url", url, "--account", "a2", "--checkpoint", "1", "--public-key", pub)
	require.NoError(t, err, out)
	proofFile := filepath.Join(dir, "proof.json")
	require.NoError(t, os.WriteFile(proofFile, []byte(out), 0o600))
	out, err = runAudit(t, nil, "proof", "--verify", proofFile, "--public-key", pub)
	require.NoError(t, err, out)
	assert.Contains(t, out, "OK: the event at position "+at(6)+" is in checkpoint 1 (creditledger/LEDGER, size "+at(9)+", key creditledger/LEDGER+")

	out, err = runAudit(t, nil, "balance", "--nats-url", url, "--account", "a2", "--at", time.Now().UTC().AddDate(0, 0, 1).Format(time.RFC3339))
	require.NoError(t, err, out)
	var pit audit.PointInTime
	require.NoError(t, json.Unmarshal([]byte(out), &pit))
	assert.Equal(t, "20", pit.Balance.AllocatedCredits.String())
	assert.Equal(t, "480", pit.Balance.AvailableCredits.String())
	out, err = runAudit(t, nil, "balance", "--nats-url", url, "--account", "a2", "--position", at(2))
	require.Error(t, err, "a2 had no events by position 2: %s", out)
	out, err = runAudit(t, nil, "balance", "--nats-url", url, "--account", "a1", "--position", at(1))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &pit))
	assert.Equal(t, "0", pit.Balance.TotalCredits.String(), "purchased, not yet activated at position 1: %s", out)
	_, err = runAudit(t, nil, "balance", "--nats-url", url, "--account", "a1")
	assert.Equal(t, exitError, exitCode(err))
	// The zero time is a time before every event, answered like one a second later.
	zero, errZero := runAudit(t, nil, "balance", "--nats-url", url, "--account", "a1", "--at", "0001-01-01T00:00:00Z")
	_, errLater := runAudit(t, nil, "balance", "--nats-url", url, "--account", "a1", "--at", "0001-01-01T00:00:01Z")
	require.Error(t, errZero, zero)
	assert.ErrorIs(t, errZero, audit.ErrNoHistory)
	assert.Equal(t, exitCode(errLater), exitCode(errZero))

	out, err = runAudit(t, nil, "replay", "--nats-url", url, "--account", "a3")
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(out, "\n"))
	csvFile := filepath.Join(dir, "events.csv")
	out, err = runAudit(t, nil, "export", "--nats-url", url, "--format", "csv", "--out", csvFile)
	require.NoError(t, err, out)
	f, err := os.Open(csvFile)
	require.NoError(t, err)
	rows, err := audit.ReadCSV(f)
	f.Close()
	require.NoError(t, err)
	assert.Len(t, rows, int(base)+9, "the ownership records and the events")

	out, err = runAudit(t, nil, "rebuild", "--nats-url", url)
	require.NoError(t, err, out)
	assert.Contains(t, out, "rebuilt 3 accounts to position "+at(9)+"; 21 answers compared, 0 differences")

	// A forged event is reported at its place, with exit code 1.
	forger, err := nats.Connect(url)
	require.NoError(t, err)
	defer forger.Close()
	var last audit.Message
	_, src := func() (*nats.Conn, *audit.Source) {
		s, err := audit.NewSource(ctx, forger)
		require.NoError(t, err)
		return forger, s
	}()
	_, err = src.Scan(ctx, audit.Filter{AccountID: "a2"}, func(m audit.Message) error { last = m; return nil })
	require.NoError(t, err)
	ev, err := events.Decode(last.Data)
	require.NoError(t, err)
	forged := ev.Envelope
	forged.Version, forged.PrevHash = forged.Version+1, forged.Hash
	forged.Payload = json.RawMessage(strings.Replace(string(forged.Payload), `"credits":"20"`, `"credits":"-20"`, 1))
	data, err := events.Encode(&forged)
	require.NoError(t, err)
	require.NoError(t, forger.Publish(jetstore.DefaultSubjects.Of("a2"), data))
	require.NoError(t, forger.Flush())
	require.Eventually(t, func() bool { h, err := src.Head(ctx); return err == nil && h == base+10 }, 5*time.Second, 10*time.Millisecond)

	out, err = runAudit(t, nil, "verify", "--nats-url", url, "--public-key", pub)
	assert.Equal(t, exitAuditFailed, exitCode(err))
	assert.Contains(t, out, "FAILED: first broken event: position "+at(10)+", account a2, version 4 (hash_mismatch)")
	assert.ErrorContains(t, err, "position "+at(10)+", account a2, version 4")
	_, err = runAudit(t, nil, "balance", "--nats-url", url, "--account", "a2", "--position", at(10))
	assert.Equal(t, exitAuditFailed, exitCode(err), "no balance from a broken chain")
	_, err = runAudit(t, nil, "checkpoint", "--request", "--nats-url", url)
	assert.ErrorContains(t, err, "fails verification")
}

func TestAuditIsQuietWhenStdoutIsNotATerminal(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	_, err := l.Client.Send(context.Background(), "purchase_license", map[string]any{"account_id": "q", "command_id": "q1",
		"license_id": "QL", "source": "sales", "credits": "5"})
	require.NoError(t, err)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer f.Close()
	// The account's events only: the ledger's ownership records (written at start) precede them.
	_, err = runAudit(t, f, "replay", "--nats-url", l.ClientURL(), "--account", "q", "--with-position")
	require.NoError(t, err)
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 1, "one event, one line, nothing else: %q", b)
	m, err := audit.ParseLine([]byte(lines[0]))
	require.NoError(t, err)
	assert.Equal(t, l.Head(), m.Position)

	// By default each line is the stored event itself, byte for byte.
	raw, err := os.Create(filepath.Join(t.TempDir(), "raw"))
	require.NoError(t, err)
	defer raw.Close()
	_, err = runAudit(t, raw, "replay", "--nats-url", l.ClientURL(), "--account", "q")
	require.NoError(t, err)
	rb, err := os.ReadFile(raw.Name())
	require.NoError(t, err)
	assert.Equal(t, string(m.Data)+"\n", string(rb))
}
