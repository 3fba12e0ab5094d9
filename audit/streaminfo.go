package audit

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errCodeTooManyRequests is JetStream's error code for "too many requests" (429), which the
// ledger answers an auditor's stream info with when its few slots for them are taken and its
// queue is full (auditread).
const errCodeTooManyRequests = 10167

// whileBusy runs ask, and again while the ledger answers it busy, directRetries times at most,
// directRetryWait apart (as the batched direct gets do).
func whileBusy[T any](ctx context.Context, ask func() (T, error)) (T, error) {
	for try := 0; ; try++ {
		v, err := ask()
		var apiErr *jetstream.APIError
		if try >= directRetries || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeTooManyRequests {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(directRetryWait):
		}
	}
}

// openStream is js.Stream, asked again while the ledger is busy.
func openStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	return whileBusy(ctx, func() (jetstream.Stream, error) { return js.Stream(ctx, name) })
}

// streamInfo is st.Info, asked again while the ledger is busy.
func streamInfo(ctx context.Context, st jetstream.Stream) (*jetstream.StreamInfo, error) {
	return whileBusy(ctx, func() (*jetstream.StreamInfo, error) { return st.Info(ctx) })
}
