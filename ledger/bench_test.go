package ledger_test

import (
	"testing"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// benchAccount holds five active licenses of every source and a few allocations.
func benchAccount() ledger.Account {
	return fold(hist(
		active("lic-1", ledger.SourceSales, "10000", true, t0),
		active("lic-2", ledger.SourceAWS, "2500.5", true, t0),
		active("lic-3", ledger.SourceAzure, "5000", false, t0),
		active("lic-4", ledger.SourceSales, "750", true, t0),
		active("lic-5", ledger.SourceAzure, "300", true, t0),
		allocated("container_security", "1200"),
		allocated("file_security", "300.25"),
		allocated("endpoint_security_core", "4000"),
	)...)
}

func BenchmarkDecideAllocate(b *testing.B) {
	a := benchAccount()
	cmd := ledger.AllocateCredits{Feature: "container_security", Credits: dec("12.5")}
	now := t0.AddDate(0, 1, 0)
	b.ReportAllocs()
	for b.Loop() {
		got, err := rules.Decide(a, cmd, now)
		if err != nil || len(got) != 1 {
			b.Fatalf("decide: %v %v", got, err)
		}
	}
}

// BenchmarkDecideAllocateWithDueRenewals includes the catch-up of five lapsed terms.
func BenchmarkDecideAllocateWithDueRenewals(b *testing.B) {
	a := benchAccount()
	cmd := ledger.AllocateCredits{Feature: "container_security", Credits: dec("12.5")}
	now := t0.AddDate(1, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rules.Decide(a, cmd, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvolve applies one event to an account of five licenses.
func BenchmarkEvolve(b *testing.B) {
	a := benchAccount()
	ev := events.Event{Envelope: events.Envelope{AccountID: acct}, Data: allocated("file_security", "0.5")}
	b.ReportAllocs()
	for b.Loop() {
		ev.Version = a.Version + 1
		a = ledger.Evolve(a, ev)
	}
}

// BenchmarkFold replays a 1,000-event history, as loading an account from the store does.
func BenchmarkFold(b *testing.B) {
	history := hist(active("lic-1", ledger.SourceSales, "1000000", true, t0))
	for len(history) < 1000 {
		history = append(history, allocated("file_security", "2"),
			events.CreditsReleased{Feature: "file_security", Credits: dec("1"), Reason: events.ReleaseRequested})
	}
	b.ReportAllocs()
	for b.Loop() {
		a := fold(history...)
		if a.Version != 1000 {
			b.Fatalf("version %d", a.Version)
		}
	}
}
