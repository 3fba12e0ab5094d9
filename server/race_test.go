package server_test

import (
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAsyncRejectionsAreRaceFree sends rejections that the writer decides (after the micro
// handler has returned) and query errors answered from the query goroutines. It checks the
// replies here; its real assertion is the race detector (go test -race): a reply must not touch
// micro.Request state that micro's handler wrapper reads concurrently for its stats.
func TestAsyncRejectionsAreRaceFree(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "rf")
	a.activeLicense("rf-L", "10")
	const n = 20
	type reply struct {
		msg *nats.Msg
		err error
	}
	cmds, queries := make([]reply, n), make([]reply, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(i int, body []byte) {
			defer wg.Done()
			cmds[i].msg, cmds[i].err = l.NC.Request("ledger.cmd.activate_license", body, requestTimeout)
		}(i, mustJSON(a.body(m{"license_id": "rf-missing"})))
		go func(i int) {
			defer wg.Done()
			queries[i].msg, queries[i].err = l.NC.Request("ledger.query.balance", []byte(`{"account_id":"rf-missing"}`), requestTimeout)
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		require.NoError(t, cmds[i].err)
		require.NoError(t, queries[i].err)
		assert.Equal(t, "not_found", decodeRejection(t, cmds[i].msg).Code)
		assert.Equal(t, "not_found", decodeRejection(t, queries[i].msg).Code)
	}
	assert.Equal(t, "insufficient_credits", decodeRejection(t, a.send("allocate_credits", m{"feature": "file_security", "credits": "11"})).Code)
}
