package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
)

// cli runs `creditledger ARGS...` in-process and returns its exit status, stdout and the last
// line of stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	return code, out.String(), lines[len(lines)-1]
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"query", "balnce"}, []string{`unknown subcommand "balnce"`, "did you mean balance?"}},
		{[]string{"query"}, []string{"needs a subcommand", "balance"}},
		{[]string{"command", "alocate_credits"}, []string{`unknown subcommand "alocate_credits"`, "allocate_credits"}},
		{[]string{"audit", "verfy"}, []string{`unknown subcommand "verfy"`, "verify"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"serve", "--no-such-flag"}, []string{"unknown flag: --no-such-flag"}},
		{[]string{"serve", "--log-level", "loud"}, []string{`--log-level "loud"`}},
		{[]string{"serve", "extra-arg"}, []string{`unknown command "extra-arg"`}},
		{[]string{"command", "allocate_credits", "--colour", "red"}, []string{"unknown flag: --colour"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
			code, _, last := cli(t, c.args...)
			assert.Equal(t, exitError, code)
			assert.True(t, strings.HasPrefix(last, "creditledger: "), last)
			for _, w := range c.want {
				assert.Contains(t, last, w)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := cli(t, "--version")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "creditledger 0.0.0-dev"), out)
}

func TestHelpShowsAllowedValuesDefaultsAndAnExample(t *testing.T) {
	t.Parallel()
	code, out, _ := cli(t, "command", "purchase_license", "--help")
	require.Equal(t, 0, code)
	for _, w := range []string{
		"--license-id", "sales, aws_marketplace or azure_marketplace", "(default 12)", "--term-months",
		"Examples:", "creditledger command purchase_license --account acme",
	} {
		assert.Contains(t, out, w)
	}
	assert.NotContains(t, out, "--license_id", "the snake_case spelling is accepted, not shown")
	code, out, _ = cli(t, "query", "usage", "--help")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "creditledger query usage --account acme --month 2026-01")
}

// TestStartFailuresEndWithOneLine: serve's start-up failures are one line and exit 2.
func TestStartFailuresEndWithOneLine(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { taken.Close() })
	l := testledger.Start(t)
	unreadable := filepath.Join(t.TempDir(), "access.yaml")
	require.NoError(t, os.WriteFile(unreadable, []byte("users: ["), 0o600))
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"data dir in use", []string{"--data-dir", l.DataDir}, []string{"data directory in use", l.DataDir, "pid "}},
		{"HTTP port taken", []string{"--http-listen", taken.Addr().String()}, []string{"address already in use"}},
		{"NATS port taken", []string{"--nats-listen", taken.Addr().String()}, []string{"address already in use"}},
		{"auth config missing", []string{"--auth-config", filepath.Join(t.TempDir(), "none.yaml")}, []string{"none.yaml"}},
		{"auth config unreadable", []string{"--auth-config", unreadable}, []string{"access.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}, c.args...)
			code, _, last := cli(t, args...)
			assert.Equal(t, exitError, code)
			assert.True(t, strings.HasPrefix(last, "creditledger: "), last)
			for _, w := range c.want {
				assert.Contains(t, last, w)
			}
		})
	}
}

// TestClientCommands: kebab-case and snake_case flags, NATS_URL, and export to stdout.
func TestClientCommands(t *testing.T) { // not parallel: t.Setenv
	l := testledger.Start(t)
	t.Setenv("NATS_URL", l.ClientURL())
	code, out, last := cli(t, "command", "purchase_license", "--account", "acme", "--license-id", "L-1", "--source", "sales", "--credits", "100")
	require.Equal(t, 0, code, last)
	assert.Contains(t, out, `"ok":true`)
	code, _, last = cli(t, "command", "activate_license", "--account", "acme", "--license_id", "L-1")
	require.Equal(t, 0, code, "the snake_case flag still works: %s", last)
	code, out, _ = cli(t, "command", "release_credits", "--account", "acme", "--feature", "file_security", "--credits", "5")
	assert.Equal(t, exitRejected, code)
	assert.Contains(t, out, `"code":"insufficient_allocation"`)
	code, out, last = cli(t, "query", "balance", "--account", "acme", "--min-position", "2")
	require.Equal(t, 0, code, last)
	assert.Contains(t, out, `"total_credits":"100"`)

	code, out, last = cli(t, "audit", "export", "--format", "jsonl", "--out", "-")
	require.Equal(t, 0, code, last)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	var row struct {
		Event struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &row))
	assert.Equal(t, "LicensePurchased", row.Event.Type)
	_, err := os.Stat("-")
	assert.True(t, os.IsNotExist(err), "no file named -")
}
