package productiontest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// A node whose appends a test hooks (Hooks.BeforeAppend: a paused process) runs as one without:
// over a store that keeps partitions apart it reads only its partitions and, alone, still reserves
// the license ids it creates in LEDGER_IDS. A hook that hid the store's partition reads made the
// tests that use it run another writer than production's (no reservation, every record read).
func TestHookedNodeReservesItsIDsAlone(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	a := start(t, sharedNode(t, url, "a", &server.Hooks{BeforeAppend: func() {}}))
	require.Eventually(t, func() bool { return len(a.Partitions()) == a.PartitionCount() }, waitFor, pollTick)
	nc := connectTo(t, url)
	before := streamHeads(t, nc)
	_, err := client(t, nc).PurchaseLicense(ctxT(t), purchase("hk-1", "acct-hook", "L-hook", "10"))
	require.NoError(t, err)
	after := streamHeads(t, nc)
	assert.Equal(t, before["KV_"+jetstore.ClaimsBucket]+1, after["KV_"+jetstore.ClaimsBucket], "the license id is reserved")
}
