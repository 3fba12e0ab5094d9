package logsignal_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/internal/logsignal"
)

// Seen closes at the first matching line only, and more matches do not panic.
func TestSignal(t *testing.T) {
	s := logsignal.New("cannot follow")
	fmt.Fprintln(s, `{"message":"started"}`)
	select {
	case <-s.Seen():
		t.Fatal("seen before the line")
	default:
	}
	fmt.Fprintln(s, `{"message":"projector cannot follow the stream yet"}`)
	fmt.Fprintln(s, `{"message":"projector cannot follow the stream yet"}`)
	_, open := <-s.Seen()
	assert.False(t, open)
}
