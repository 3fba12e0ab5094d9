package writer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
)

type benchClock struct{ t time.Time }

// leasedEverything owns every one of 64 partitions the way the server's ownership does: each
// check takes the keeper's lock, finds the lease and compares its expiry with the clock
// (partition.Keeper.Owns), so OwnsEverything costs 64 of them.
type leasedEverything struct {
	mu         sync.Mutex
	validUntil map[int]time.Time
}

func newLeasedEverything() *leasedEverything {
	o := &leasedEverything{validUntil: map[int]time.Time{}}
	for p := range 64 {
		o.validUntil[p] = time.Now().Add(time.Hour)
	}
	return o
}

func (o *leasedEverything) owns(p int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Now().Before(o.validUntil[p])
}

func (o *leasedEverything) Owns(accountID string) bool { return o.owns(len(accountID) % 64) }

func (o *leasedEverything) OwnsEverything() bool {
	for p := range 64 {
		if !o.owns(p) {
			return false
		}
	}
	return true
}

// noClaims is a claims store the benchmark never reaches (the writer owns every partition).
type noClaims struct{}

func (noClaims) Claim(context.Context, string, string) (string, error) {
	panic("a writer that owns every partition claims nothing")
}

func (c benchClock) Now() time.Time { return c.t }

// benchWriter is a loaded writer on a MemStore whose accounts each hold five active licenses,
// configured like a single node (an ownership that holds every partition, a claims store); Run
// has stopped, so the benchmark drives launch and finish itself.
func benchWriter(b *testing.B, accounts int) *Writer {
	b.Helper()
	w, err := New(Options{Store: &MemStore{}, Rules: ledger.NewRules(ledger.DefaultCatalogue()),
		Clock: benchClock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, NewID: uuid.NewString,
		Log: zerolog.Nop(), SweepInterval: time.Hour, Owner: newLeasedEverything(), Claims: noClaims{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Load(ctx); err != nil {
		b.Fatal(err)
	}
	var reqs []*request
	for a := range accounts {
		for l := range 5 {
			id := fmt.Sprintf("acct-%d", a)
			lic := fmt.Sprintf("%s-L%d", id, l)
			reqs = append(reqs,
				&request{Request: submit.Request{CommandID: "buy-" + lic, AccountID: id, BodyHash: "h", Command: ledger.PurchaseLicense{
					LicenseID: lic, Source: "sales", Credits: decimal.NewFromInt(1000), TermMonths: 12}}},
				&request{Request: submit.Request{CommandID: "act-" + lic, AccountID: id, BodyHash: "h", Command: ledger.ActivateLicense{LicenseID: lic}}})
		}
	}
	roundTrip(b, w, reqs)
	return w
}

// roundTrip runs rounds until every request is answered, as Run would with one append in flight.
func roundTrip(_ testing.TB, w *Writer, reqs []*request) {
	ctx := context.Background()
	for len(reqs) > 0 {
		reqs = w.launch(ctx, reqs)
		if w.flight.n > 0 {
			reqs = append(w.finish(ctx, <-w.flight.acks), reqs...)
		}
		for w.side.busy() {
			reqs = append(reqs, w.side.finished(<-w.side.done)...)
		}
	}
}

// BenchmarkPlanAllocate is the writer's own work to decide one command (an allocation on an
// account with five active licenses), seal and encode its event: plan, without the append.
func BenchmarkPlanAllocate(b *testing.B) {
	w := benchWriter(b, 1)
	now := w.opts.Clock.Now()
	b.ReportAllocs()
	for i := range b.N {
		r := &request{Request: submit.Request{CommandID: fmt.Sprint("alloc-", i), AccountID: "acct-0", BodyHash: "h",
			Command: ledger.AllocateCredits{Feature: "file_security", Credits: decimal.NewFromInt(1)}}}
		p, err := w.plan(context.Background(), r, now, 0)
		if err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundPerCommand is a whole group-commit round of 64 allocations on 64 accounts, per
// command: idempotency lookups, decide, seal, encode, the (in-memory) append, fold and reply.
func BenchmarkRoundPerCommand(b *testing.B) {
	const batch = 64
	w := benchWriter(b, batch)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		reqs := make([]*request, batch)
		for a := range reqs {
			n++
			reqs[a] = &request{Request: submit.Request{CommandID: fmt.Sprint("alloc-", n), AccountID: fmt.Sprintf("acct-%d", a), BodyHash: "h",
				Command: ledger.AllocateCredits{Feature: "file_security", Credits: decimal.NewFromInt(1)}, Reply: func(Result) {}}}
		}
		roundTrip(b, w, reqs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/command")
}

// BenchmarkRoundWithRejections is BenchmarkRoundPerCommand with a third of the commands rejected
// (allocations beyond the balance), written to an in-memory rejection log and remembered: past
// RejectionsRemembered they are pushed into the compact form.
func BenchmarkRoundWithRejections(b *testing.B) {
	const batch = 64
	w := benchWriter(b, batch)
	w.opts.Rejections = &memRejections{}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		reqs := make([]*request, batch)
		for a := range reqs {
			n++
			credits := int64(1)
			if n%3 == 0 {
				credits = 1_000_000
			}
			reqs[a] = &request{Request: submit.Request{CommandID: fmt.Sprint("alloc-", n), AccountID: fmt.Sprintf("acct-%d", a), BodyHash: "h",
				Command: ledger.AllocateCredits{Feature: "file_security", Credits: decimal.NewFromInt(credits)}, Reply: func(Result) {}}}
		}
		roundTrip(b, w, reqs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/command")
}
