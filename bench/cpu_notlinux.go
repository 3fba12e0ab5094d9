//go:build !linux

package bench

import (
	"errors"
	"time"
)

// otherCPU is read from /proc, which only Linux has.
func otherCPU(int) (time.Duration, error) {
	return 0, errors.New("another process's CPU time is read on Linux only")
}
