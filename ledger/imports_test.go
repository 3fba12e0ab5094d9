package ledger_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The domain core imports no NATS package and no infrastructure of this module: the JetStream
// store lives in ledger/jetstore, outside what ledger and events depend on.
func TestDomainImportsNoInfrastructure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/creditledger/creditledger/ledger", "github.com/creditledger/creditledger/events").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.Contains(dep, "nats-io"):
			t.Errorf("the domain depends on %s", dep)
		case strings.HasPrefix(dep, "github.com/creditledger/creditledger/") &&
			dep != "github.com/creditledger/creditledger/ledger" && dep != "github.com/creditledger/creditledger/events":
			t.Errorf("the domain depends on infrastructure package %s", dep)
		}
	}
}
