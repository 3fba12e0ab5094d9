package commands_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The command edge links no writer: it hands commands over through the port in commands/submit,
// which the writer implements. The port itself links nothing of the module but the domain and
// the wire types, so an implementation of it links no service code.
func TestCommandsLinkNoWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	const mod = "github.com/creditledger/creditledger/"
	out, err := exec.Command("go", "list", "-deps", mod+"commands/...").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		if dep == mod+"writer" || strings.HasPrefix(dep, mod+"writer/") {
			t.Errorf("commands/... depends on %s", dep)
		}
	}
	out, err = exec.Command("go", "list", "-deps", mod+"commands/submit").CombinedOutput()
	require.NoError(t, err, "%s", out)
	allowed := map[string]bool{mod + "commands/submit": true, mod + "api": true, mod + "ledger": true, mod + "events": true}
	for _, dep := range strings.Fields(string(out)) {
		if (strings.HasPrefix(dep, mod) && !allowed[dep]) || strings.Contains(dep, "nats-io") {
			t.Errorf("the submit port depends on %s", dep)
		}
	}
}
