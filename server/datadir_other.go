//go:build !unix

package server

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// flockExclusive is a no-op where flock is not available: the data directory is not protected
// against a second process there.
func flockExclusive(*os.File) error { return nil }
