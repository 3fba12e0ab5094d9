package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
)

// TestServerLogFoldsRepeats: a dead route peer is redialled every second on each route
// connection; the log gets one line per window with the count folded, not four lines a second.
func TestServerLogFoldsRepeats(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	l := &fatalLog{log: zerolog.New(&out), now: func() time.Time { return now }}
	const routeErr = "Error trying to connect to route (attempt %d): %v"
	for i := 1; i <= 124; i++ { // 31 s of four route connections redialling every second
		l.Errorf(routeErr, i, "connection refused")
		if i%4 == 0 {
			now = now.Add(time.Second)
		}
	}
	l.Warnf("JetStream cluster stream %q has NO quorum", "LEDGER")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Len(t, lines, 3, "the first route error, one after the window with its count, and the other line: %s", out.String())
	assert.Contains(t, lines[0], "attempt 1)")
	assert.NotContains(t, lines[0], "repeated")
	assert.Contains(t, lines[1], `"repeated":119`, "the second route line carries the folded count")
	assert.Contains(t, lines[2], "NO quorum", "another line is not folded with it")
}
