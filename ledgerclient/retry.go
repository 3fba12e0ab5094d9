package ledgerclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/ledger"
)

// MaxAttempts bounds RetryPolicy.Attempts.
const MaxAttempts = 20

// RetryPolicy retries a request answered `unavailable` (overloaded, stopping, a read model not
// yet at min_position), timed out, or with no ledger listening. A command is retried with the
// same command_id, so it takes effect at most once: a retry of one that was in fact applied
// gets the first reply again (Result.Replayed). Every other rejection is final.
type RetryPolicy struct {
	// Attempts is the most tries of one request, the first included (1: no retry; at most
	// MaxAttempts).
	Attempts int
	// Backoff is the wait after failed try n (n from 1) before the next; nil means
	// ExponentialBackoff(100*time.Millisecond, 2*time.Second).
	Backoff func(attempt int) time.Duration
}

// WithRetry retries requests as p says.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.Attempts < 1 || p.Attempts > MaxAttempts {
			return fmt.Errorf("%w: retry attempts must be from 1 to %d", ErrConfig, MaxAttempts)
		}
		if p.Backoff == nil {
			p.Backoff = ExponentialBackoff(100*time.Millisecond, 2*time.Second)
		}
		c.retry = p
		return nil
	}
}

// ExponentialBackoff waits base, 2*base, 4*base ... at most limit.
func ExponentialBackoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	}
}

// Retryable reports whether err is worth a retry with the same command_id: an `unavailable`
// answer, a request that timed out, or no ledger listening on the subject.
func Retryable(err error) bool {
	return errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders)
}

// run calls try until it succeeds, fails for good, runs out of attempts or ctx ends.
func (p RetryPolicy) run(ctx context.Context, try func(context.Context) error) error {
	attempts := max(1, min(p.Attempts, MaxAttempts))
	var err error
	for n := 1; n <= attempts; n++ {
		if err = try(ctx); err == nil || !Retryable(err) || ctx.Err() != nil || n == attempts {
			return err
		}
		t := time.NewTimer(p.Backoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}
