package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the file in the data directory that one ledger process holds an exclusive
// lock on (flock) for as long as it runs; it contains the holder's pid.
const LockFileName = "creditledger.lock"

// ErrDataDirLocked is returned by Start when another process holds the data directory.
var ErrDataDirLocked = errors.New("data directory in use")

// dirLock is an exclusive lock on a data directory, released by Close (or by the process's end:
// the kernel drops a flock when its holder dies, so a crash never leaves a stale lock).
type dirLock struct {
	f *os.File
}

// lockDataDir takes the lock before anything in dir is opened. A second process fails at once
// with an error that names the directory and the holder's pid.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: lock file: %w", dir, err)
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s is held by another creditledger process (%s); stop it or choose another --data-dir",
				ErrDataDirLocked, dir, lockHolder(path))
		}
		return nil, fmt.Errorf("data directory %s: lock %s: %w", dir, path, err)
	}
	// The pid is informative only (the flock is the lock): rewrite it for the next reader.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// lockHolder describes the process named in the lock file.
func lockHolder(path string) string {
	b, err := os.ReadFile(path)
	pid := strings.TrimSpace(string(b))
	if err != nil || pid == "" {
		return "pid unknown"
	}
	return "pid " + pid
}

// Close releases the lock.
func (l *dirLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}
