package server

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestAnAppendTimesOutWellWithinTheForwardWait: a writer has one append in flight, so an append
// that no server answers (sent to a stream leader that has just died) holds every command of the
// node until it times out. The time a request waits for its owner must leave room for that
// timeout and for the retries after the stream's election (4-9 s in nats-server), or the first
// commands after a kill are answered unavailable whatever the election took (10 s and 10 s
// before: the takeover measurements in docs/OPERATIONS.md).
func TestAnAppendTimesOutWellWithinTheForwardWait(t *testing.T) {
	assert.LessOrEqual(t, 4*jetstore.DefaultAppendTimeout, service.DefaultForwardWait,
		"a lost append must cost a fraction of what a request waits for its owner")
}
