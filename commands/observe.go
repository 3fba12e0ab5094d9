package commands

import (
	"errors"
	"time"

	"github.com/creditledger/creditledger/writer"
)

// Observer is told the outcome of every command the service answers (metrics). code is "ok"
// for an accepted command (replays included) or the rejection code. It is called on the
// writer's goroutine, so it must be quick and must not block.
type Observer interface {
	ObserveCommand(name, code string, latency time.Duration)
}

// Option adjusts Register.
type Option func(*options) error

type options struct {
	observer Observer
}

// WithObserver reports every answered command to o.
func WithObserver(o Observer) Option {
	return func(opts *options) error {
		if o == nil {
			return errors.New("commands: nil observer")
		}
		opts.observer = o
		return nil
	}
}

func newOptions(opts []Option) (options, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// observe reports one answered command to obs, if there is one.
func observe(obs Observer, name string, res writer.Result, start time.Time) {
	if obs == nil {
		return
	}
	code := "ok"
	if res.Err != nil {
		code = string(res.Err.Code)
	}
	obs.ObserveCommand(name, code, time.Since(start))
}
