package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/internal/testledger"
)

// TestServingWhenStartReturns: once server.Start has returned (the process logs "ready"), a
// client that connects and sends at once must reach the endpoints, never "no responders".
func TestServingWhenStartReturns(t *testing.T) {
	t.Parallel()
	const starts = 8
	missed := 0
	for i := 0; i < starts; i++ {
		l := testledger.Start(t)
		// The query endpoints are registered last, after every command endpoint.
		for _, subj := range []string{"ledger.query.switches", "ledger.cmd.switch_billing_model"} {
			_, err := l.NC.Request(subj, []byte(`{}`), 5*time.Second)
			if errors.Is(err, nats.ErrNoResponders) {
				missed++
			}
		}
		l.Stop()
	}
	assert.Zero(t, missed, "BUG: requests sent right after server.Start returned got no responders in %d of %d starts "+
		"(server.Start does not flush its NATS connection after registering the micro endpoints)", missed, starts)
}
