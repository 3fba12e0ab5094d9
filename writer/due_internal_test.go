package writer

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/ledger"
)

var dueT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// licensed is an account with one active license expiring at exp.
func licensed(id string, exp time.Time) *account {
	a := ledger.NewAccount(id).WithMaps()
	a.Licenses["L"] = ledger.License{ID: "L", Source: ledger.SourceSales, Credits: decimal.NewFromInt(10),
		Status: ledger.StatusActive, AutoRenew: true, ExpiresAt: exp}
	a.LicenseOrder = []string{"L"}
	return &account{state: a}
}

// TestDueSchedule: only accounts due by now come out, earliest first and once each; an entry
// superseded by a later schedule is dropped; a rescheduled account comes out again.
func TestDueSchedule(t *testing.T) {
	t.Parallel()
	w := &Writer{cache: accountCache{accounts: map[string]*account{
		"late":  licensed("late", dueT0.Add(3*time.Hour)),
		"first": licensed("first", dueT0.Add(time.Hour)),
		"next":  licensed("next", dueT0.Add(2*time.Hour)),
		"none":  {state: ledger.NewAccount("none")},
	}}}
	w.rescheduleAll()
	assert.Empty(t, w.dueAccounts(dueT0, 10), "nothing due yet")
	assert.Equal(t, []string{"first", "next"}, w.dueAccounts(dueT0.Add(2*time.Hour), 10))

	// "first" renewed (its state moved on) while "next" was brought back unchanged.
	first := w.cache.accounts["first"]
	l := first.state.Licenses["L"]
	l.ExpiresAt = dueT0.AddDate(1, 0, 0)
	first.state.Licenses["L"] = l
	w.reschedule("first") // an entry for the old time: superseded below, so stale
	w.schedule("first", first)
	w.reschedule("next")
	w.reschedule("next") // a duplicate comes out once
	assert.Equal(t, []string{"next", "late"}, w.dueAccounts(dueT0.Add(4*time.Hour), 10))
	assert.Equal(t, []string{"first"}, w.dueAccounts(dueT0.AddDate(2, 0, 0), 10))
	assert.Empty(t, w.dueAccounts(dueT0.AddDate(3, 0, 0), 10))
}

// BenchmarkSweepNothingDue is the expiry processor's cost per second on a quiet ledger.
func BenchmarkSweepNothingDue(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			w := &Writer{cache: accountCache{accounts: map[string]*account{}, advancing: map[string]bool{}}}
			for i := range n {
				id := fmt.Sprint("a", i)
				w.cache.accounts[id] = licensed(id, dueT0.AddDate(1, 0, i%365))
			}
			w.rescheduleAll()
			b.ResetTimer()
			for range b.N {
				if len(w.sweepRequests(dueT0)) != 0 {
					b.Fatal("nothing should be due")
				}
			}
		})
	}
}
