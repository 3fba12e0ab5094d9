package writer

import (
	"container/heap"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// The expiry processor's schedule: a min-heap of the moments accounts next fall due (renewals,
// expiries, ends of grace periods), so a sweep looks only at accounts that are due instead of
// asking every account every second on the writer goroutine (at a million accounts a full scan
// cost most of a second per sweep).
//
// Entries are never updated in place: a changed account gets a new entry, and an entry whose
// time no longer matches its account's nextDue is stale and dropped when it surfaces.

// dueEntry says account id falls due at at.
type dueEntry struct {
	at time.Time
	id string
}

type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// schedule records when the account next falls due, after its state changed.
func (w *Writer) schedule(id string, a *account) {
	at, ok := ledger.NextDue(a.state)
	if !ok {
		a.nextDue = time.Time{}
		return
	}
	if at.Equal(a.nextDue) {
		return // its entry is still in the heap
	}
	a.nextDue = at
	heap.Push(&w.due, dueEntry{at: at, id: id})
}

// rescheduleAll rebuilds the schedule from every account (after a load).
func (w *Writer) rescheduleAll() {
	w.due = w.due[:0]
	for id, a := range w.cache.accounts {
		a.nextDue = time.Time{}
		if at, ok := ledger.NextDue(a.state); ok {
			a.nextDue = at
			w.due = append(w.due, dueEntry{at: at, id: id})
		}
	}
	heap.Init(&w.due)
}

// dueAccounts pops the accounts due at now (at most limit), skipping stale entries. The caller
// must put back, with reschedule, the ones it could not bring up to date yet.
func (w *Writer) dueAccounts(now time.Time, limit int) []string {
	var out []string
	seen := map[string]bool{}
	for len(w.due) > 0 && len(out) < limit && !w.due[0].at.After(now) {
		e := heap.Pop(&w.due).(dueEntry)
		a, ok := w.cache.accounts[e.id]
		if !ok || seen[e.id] || !a.nextDue.Equal(e.at) {
			continue // gone, a duplicate, or superseded by a newer entry
		}
		seen[e.id] = true
		out = append(out, e.id)
	}
	return out
}

// reschedule puts an account popped by dueAccounts back, so the next sweep looks again unless
// its state changes first (a committed renewal pushes a new entry and makes this one stale).
func (w *Writer) reschedule(id string) {
	if a, ok := w.cache.accounts[id]; ok && !a.nextDue.IsZero() {
		heap.Push(&w.due, dueEntry{at: a.nextDue, id: id})
	}
}
