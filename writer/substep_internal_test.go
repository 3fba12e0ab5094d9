package writer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

type stepClock struct{}

func (stepClock) Now() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }

// ownedSet owns the accounts it names.
type ownedSet map[string]bool

func (o ownedSet) Owns(id string) bool  { return o[id] }
func (o ownedSet) OwnsEverything() bool { return false }

// TestStepReadIsRedoneWhenItsAccountChanged: an account read back for a subscription step is
// used only while nothing it relied on moved: the copy the writer holds (re-read, dropped,
// appended to), the ownership, an append to another partition's account. The foreign copy the
// step itself built from the read is not a change.
func TestStepReadIsRedoneWhenItsAccountChanged(t *testing.T) {
	owned := ownedSet{}
	w, err := New(Options{Store: &MemStore{}, Clock: stepClock{}, NewID: func() string { return "id" }, Owner: owned})
	require.NoError(t, err)
	held := &account{state: ledger.NewAccount("x"), head: 7}
	read := func() *accountRead {
		e := &accountRead{acct: w.cache.accounts["x"], owned: w.owns("x"), foreignGen: w.foreignAppends}
		if e.acct != nil {
			e.head = e.acct.head
		}
		return e
	}
	cases := []struct {
		name   string
		before func()
		change func(e *accountRead)
		valid  bool
	}{
		{"unchanged held copy", func() { w.cache.accounts["x"] = held }, func(*accountRead) {}, true},
		{"held copy appended to", func() { w.cache.accounts["x"] = held }, func(*accountRead) { held.head = 9 }, false},
		{"held copy re-read", func() { w.cache.accounts["x"] = held }, func(*accountRead) { w.cache.accounts["x"] = &account{state: ledger.NewAccount("x"), head: 7} }, false},
		{"held copy forgotten", func() { w.cache.accounts["x"] = held }, func(*accountRead) { delete(w.cache.accounts, "x") }, false},
		{"partition re-acquired", func() { w.cache.accounts["x"] = held }, func(*accountRead) { owned["x"] = true }, false},
		{"absent, still absent", func() {}, func(*accountRead) {}, true},
		{"absent, the step's own foreign copy", func() {}, func(e *accountRead) { w.installForeign("x", e) }, true},
		{"absent, a foreign append landed", func() {}, func(*accountRead) { w.foreignAppends++ }, false},
		{"absent, another copy read", func() {}, func(*accountRead) { w.cache.accounts["x"] = &account{state: ledger.NewAccount("x"), foreign: true} }, false},
	}
	for _, c := range cases {
		delete(w.cache.accounts, "x")
		delete(owned, "x")
		held.head = 7
		c.before()
		e := read()
		c.change(e)
		assert.Equal(t, c.valid, w.readValid("x", e), c.name)
	}
}
