package projections

import (
	"errors"
	"time"

	"github.com/creditledger/creditledger/api"
)

// QueryObserver is told the outcome and latency of every query the NATS service answers
// (metrics). code is "ok" or the rejection code.
type QueryObserver interface {
	ObserveQuery(name, transport, code string, latency time.Duration)
}

// RegisterOption adjusts Register.
type RegisterOption func(*registerOptions) error

type registerOptions struct {
	observer QueryObserver
}

// WithQueryObserver reports every answered NATS query to o.
func WithQueryObserver(o QueryObserver) RegisterOption {
	return func(opts *registerOptions) error {
		if o == nil {
			return errors.New("projections: nil query observer")
		}
		opts.observer = o
		return nil
	}
}

func newRegisterOptions(opts []RegisterOption) (registerOptions, error) {
	var o registerOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// observeQuery reports one answered NATS query to obs, if there is one.
func observeQuery(obs QueryObserver, name string, err error, start time.Time) {
	if obs == nil {
		return
	}
	code := "ok"
	if err != nil {
		code = string(api.AsError(err).Code)
	}
	obs.ObserveQuery(name, "nats", code, time.Since(start))
}
