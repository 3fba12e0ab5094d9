package commands

import (
	"errors"
	"time"
)

// Observer is told the outcome of every command the service answers (metrics). code is "ok"
// for an accepted command (replays included) or the rejection code. It is called on the
// writer's goroutine, so it must be quick and must not block.
type Observer interface {
	ObserveCommand(name, code string, latency time.Duration)
}

// Option adjusts the command service (commands/service.Register).
type Option func(*Options) error

// Options are the command service's settings, filled in by Option values.
type Options struct {
	// Observer, when set, is told every answered command.
	Observer Observer
}

// WithObserver reports every answered command to o.
func WithObserver(o Observer) Option {
	return func(opts *Options) error {
		if o == nil {
			return errors.New("commands: nil observer")
		}
		opts.Observer = o
		return nil
	}
}

// ApplyOptions resolves opts.
func ApplyOptions(opts []Option) (Options, error) {
	var o Options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}
