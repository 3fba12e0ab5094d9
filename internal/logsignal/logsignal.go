// Package logsignal lets a test wait for a log line: tests synchronise on what a component says
// it did, not on sleeps.
package logsignal

import (
	"strings"
	"sync"
)

// Signal is an io.Writer for a logger that closes Seen the first time a line contains Want.
type Signal struct {
	want string
	once sync.Once
	seen chan struct{}
}

// New returns a Signal for lines that contain want.
func New(want string) *Signal { return &Signal{want: want, seen: make(chan struct{})} }

// Write looks for the wanted text in one log line.
func (s *Signal) Write(b []byte) (int, error) {
	if strings.Contains(string(b), s.want) {
		s.once.Do(func() { close(s.seen) })
	}
	return len(b), nil
}

// Seen is closed once a line with the wanted text was written.
func (s *Signal) Seen() <-chan struct{} { return s.seen }
