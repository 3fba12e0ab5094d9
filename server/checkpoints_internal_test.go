package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Only requests of its own reach the checkpoint handler: a message a consumer delivers (no
// reply subject, or JetStream's ack subject) or with a body that is not a checkpoint request is
// left unanswered.
func TestNotACheckpointRequest(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		reply, body string
		ok          bool
	}{
		{"_INBOX.abc.1", "", true},
		{"_INBOX.abc.1", " {} ", true},
		{"_INBOX_ledger.x", "{}", true},
		{"", "", false},
		{"$JS.ACK.LEDGER_CHECKPOINTS.c.1.1.1.1.0", "", false},
		{"_INBOX.abc.1", "creditledger/LEDGER\n7\nroot\n\n— sig\n", false},
		{"_INBOX.abc.1", `{"seq":1}`, false},
	} {
		why := notACheckpointRequest(c.reply, []byte(c.body))
		assert.Equal(t, c.ok, why == "", "reply %q body %q: %s", c.reply, c.body, why)
	}
}
