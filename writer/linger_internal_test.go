package writer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestLingering: the next round waits only while fewer requests are queued than the last append
// answered, never while idle or with an append in flight, and never past Linger or half the last
// append's time.
func TestLingering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		linger     time.Duration
		answered   int
		waiting    int
		inflight   int
		lastAppend time.Duration
		ago        time.Duration
		wait       bool
		atMost     time.Duration
	}{
		{"cohort still arriving", 5 * time.Millisecond, 40, 10, 0, 8 * time.Millisecond, 0, true, 4 * time.Millisecond},
		{"capped by Linger", 2 * time.Millisecond, 40, 10, 0, 8 * time.Millisecond, 0, true, 2 * time.Millisecond},
		{"fast store barely waits", 5 * time.Millisecond, 3, 1, 0, 400 * time.Microsecond, 0, true, 200 * time.Microsecond},
		{"cohort arrived", 5 * time.Millisecond, 40, 40, 0, 8 * time.Millisecond, 0, false, 0},
		{"enough waiting already", 5 * time.Millisecond, 150, 64, 0, 12 * time.Millisecond, 0, false, 0},
		{"nothing waiting", 5 * time.Millisecond, 40, 0, 0, 8 * time.Millisecond, 0, false, 0},
		{"append in flight", 5 * time.Millisecond, 40, 10, 1, 8 * time.Millisecond, 0, false, 0},
		{"linger over", 5 * time.Millisecond, 40, 10, 0, 8 * time.Millisecond, 5 * time.Millisecond, false, 0},
		{"turned off", -1, 40, 10, 0, 8 * time.Millisecond, 0, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &Writer{opts: Options{Linger: c.linger}, answered: c.answered, inflight: c.inflight,
				lastAppend: c.lastAppend, answeredAt: time.Now().Add(-c.ago)}
			got := w.lingering(c.waiting)
			if !c.wait {
				assert.Zero(t, got)
				return
			}
			assert.Positive(t, got)
			assert.LessOrEqual(t, got, c.atMost)
		})
	}
}
