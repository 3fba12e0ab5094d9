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
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		linger     time.Duration
		answered   int
		waiting    int
		inflight   int
		lastAppend time.Duration
		ago        time.Duration
		want       time.Duration
	}{
		{"cohort still arriving", 5 * time.Millisecond, 40, 10, 0, 8 * time.Millisecond, time.Millisecond, 3 * time.Millisecond},
		{"capped by Linger", 2 * time.Millisecond, 40, 10, 0, 8 * time.Millisecond, 0, 2 * time.Millisecond},
		{"fast store barely waits", 5 * time.Millisecond, 3, 1, 0, 400 * time.Microsecond, 0, 200 * time.Microsecond},
		{"cohort arrived", 5 * time.Millisecond, 40, 40, 0, 8 * time.Millisecond, 0, 0},
		{"enough waiting already", 5 * time.Millisecond, 150, 64, 0, 12 * time.Millisecond, 0, 0},
		{"nothing waiting", 5 * time.Millisecond, 40, 0, 0, 8 * time.Millisecond, 0, 0},
		{"append in flight", 5 * time.Millisecond, 40, 10, 1, 8 * time.Millisecond, 0, 0},
		{"linger over", 5 * time.Millisecond, 40, 10, 0, 8 * time.Millisecond, 5 * time.Millisecond, 0},
		{"turned off", -1, 40, 10, 0, 8 * time.Millisecond, 0, 0},
		{"after a failed append", 5 * time.Millisecond, 0, 10, 0, 8 * time.Millisecond, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := batching{linger: c.linger, maxInflight: 1, pipelineMin: 32}
			in := roundInputs{now: now, waiting: c.waiting, inflight: c.inflight,
				last: lastAppend{answered: c.answered, at: now.Add(-c.ago), took: c.lastAppend}}
			assert.Equal(t, c.want, b.lingering(in))
		})
	}
}

// TestBatchingNext: a round starts when something waits, nothing holds it back (a linger, a
// snapshot due) and the appends in flight leave room: with one in flight, only for a batch of
// pipelineMin.
func TestBatchingNext(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	long := lastAppend{answered: 40, at: now.Add(-time.Minute), took: 8 * time.Millisecond}
	cases := []struct {
		name     string
		b        batching
		in       roundInputs
		start    bool
		lingerOK bool
	}{
		{"idle", batching{linger: 5 * time.Millisecond, maxInflight: 1, pipelineMin: 32}, roundInputs{now: now}, false, false},
		{"one waits, nothing in flight", batching{linger: 5 * time.Millisecond, maxInflight: 1, pipelineMin: 32}, roundInputs{now: now, waiting: 1, last: long}, true, false},
		{"in flight, max reached", batching{linger: 5 * time.Millisecond, maxInflight: 1, pipelineMin: 1}, roundInputs{now: now, waiting: 100, inflight: 1, last: long}, false, false},
		{"in flight, too few to pipeline", batching{linger: 5 * time.Millisecond, maxInflight: 2, pipelineMin: 32}, roundInputs{now: now, waiting: 31, inflight: 1, last: long}, false, false},
		{"in flight, enough to pipeline", batching{linger: 5 * time.Millisecond, maxInflight: 2, pipelineMin: 32}, roundInputs{now: now, waiting: 32, inflight: 1, last: long}, true, false},
		{"snapshot due", batching{linger: 5 * time.Millisecond, maxInflight: 1, pipelineMin: 32}, roundInputs{now: now, waiting: 10, snapshotDue: true}, false, false},
		{"cohort arriving", batching{linger: 5 * time.Millisecond, maxInflight: 1, pipelineMin: 32}, roundInputs{now: now, waiting: 10,
			last: lastAppend{answered: 40, at: now, took: 8 * time.Millisecond}}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start, linger := c.b.next(c.in)
			assert.Equal(t, c.start, start)
			assert.Equal(t, c.lingerOK, linger > 0)
		})
	}
}
