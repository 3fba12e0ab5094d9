//go:build unix

package server

import (
	"os"
	"syscall"
)

var errWouldBlock = syscall.EWOULDBLOCK

// flockExclusive takes an exclusive, non-blocking flock on f (a few tries if a signal
// interrupts the call).
func flockExclusive(f *os.File) error {
	var err error
	for range 8 {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != syscall.EINTR {
			return err
		}
	}
	return err
}
