package writer

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/commands/submit"
)

func clientReq(account, command string) *request {
	return &request{Request: submit.Request{AccountID: account, CommandID: command}}
}

func internalReq(account, command string) *request {
	return &request{internal: true, Request: submit.Request{AccountID: account, CommandID: command}}
}

// TestInFlightBusy: a request waits while an append in flight holds its account or, for a
// client's command, its command id; an internal request (the expiry processor's, a move's side)
// never waits on a command id, and release frees exactly what hold marked.
func TestInFlightBusy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		held []*request
		then *request
		busy bool
	}{
		{"nothing in flight", nil, clientReq("a", "c1"), false},
		{"same account", []*request{clientReq("a", "c1")}, clientReq("a", "c2"), true},
		{"same command id, other account", []*request{clientReq("a", "c1")}, clientReq("b", "c1"), true},
		{"other account and command", []*request{clientReq("a", "c1")}, clientReq("b", "c2"), false},
		{"internal request on a busy account", []*request{clientReq("a", "c1")}, internalReq("a", "$time:a:1"), true},
		{"internal request with a busy command id", []*request{clientReq("a", "c1")}, internalReq("b", "c1"), false},
		{"internal hold marks no command id", []*request{internalReq("a", "c1")}, clientReq("b", "c1"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInFlight(1)
			for _, r := range c.held {
				f.hold(r)
			}
			assert.Equal(t, c.busy, f.busy(c.then))
			assert.Equal(t, len(c.held) > 0, f.accountBusy("a"))
			for _, r := range c.held {
				f.release(r)
			}
			assert.False(t, f.busy(c.then), "released")
			assert.Empty(t, f.accounts)
			assert.Empty(t, f.commands)
		})
	}
}

// TestInFlightReservations: a unique id is reserved by one account at a time, and only the account
// that reserved it drops the reservation.
func TestInFlightReservations(t *testing.T) {
	t.Parallel()
	f := newInFlight(1)
	_, ok := f.reservedBy("license:L-1")
	assert.False(t, ok)

	f.reserve("license:L-1", "a")
	holder, ok := f.reservedBy("license:L-1")
	assert.True(t, ok)
	assert.Equal(t, "a", holder)

	f.unreserve("license:L-1", "b") // another account's release leaves it
	holder, _ = f.reservedBy("license:L-1")
	assert.Equal(t, "a", holder)

	f.unreserve("license:L-1", "a")
	_, ok = f.reservedBy("license:L-1")
	assert.False(t, ok)
	f.unreserve("license:L-1", "a") // twice is harmless
	assert.Empty(t, f.reserved)
}

// TestInFlightEnded: an append counted at launch is uncounted when it ends; the last append
// answered its client commands and rejections (not the internal ones), none when it failed.
func TestInFlightEnded(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plans := []planned{{req: clientReq("a", "c1")}, {req: internalReq("b", "$time:b:1")}, {req: clientReq("c", "c3")}}
	cases := []struct {
		name     string
		done     appendDone
		answered int
	}{
		{"appended", appendDone{plans: plans, took: time.Millisecond}, 2},
		{"appended with rejections", appendDone{plans: plans, rejects: make([]pendingReject, 3)}, 5},
		{"rejections only", appendDone{rejects: make([]pendingReject, 1)}, 1},
		{"failed", appendDone{plans: plans, rejects: make([]pendingReject, 3), err: errors.New("store down")}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInFlight(2)
			f.launched()
			f.launched()
			f.ended(&c.done, at)
			assert.Equal(t, 1, f.n)
			assert.Equal(t, lastAppend{answered: c.answered, at: at, took: c.done.took}, f.last)
		})
	}
}
