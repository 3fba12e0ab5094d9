package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// benchStream encodes n events over accounts accounts the way the writer stores them: a purchase
// and an activation per account, then allocations and releases.
func benchStream(b *testing.B, n, accounts int) (data [][]byte, ids []string) {
	b.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	version := make([]uint64, accounts)
	prev := make([]string, accounts)
	for i := range n {
		a := i % accounts
		id := fmt.Sprintf("acct-%d", a)
		var p events.Payload
		switch v := version[a]; {
		case v == 0:
			p = events.LicensePurchased{LicenseID: id + "-L0", Source: "sales", Credits: decimal.NewFromInt(1000), TermMonths: 12,
				AutoRenew: true, ContractStart: t0, PurchasedAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)}
		case v == 1:
			p = events.LicenseActivated{LicenseID: id + "-L0", ActivatedAt: t0}
		case v%2 == 0:
			p = events.CreditsAllocated{Feature: "file_security", Credits: decimal.NewFromInt(7)}
		default:
			p = events.CreditsReleased{Feature: "file_security", Credits: decimal.NewFromInt(7), Reason: events.ReleaseRequested}
		}
		raw, err := events.EncodePayload(p)
		if err != nil {
			b.Fatal(err)
		}
		if prev[a] == "" {
			prev[a] = events.ZeroHash
		}
		env := events.Envelope{EventID: fmt.Sprintf("ev-%d", i), Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()),
			AccountID: id, Version: version[a] + 1, OccurredAt: t0, CommandID: fmt.Sprintf("cmd-%d", i),
			CommandHash: "h", CorrelationID: "c", Payload: raw, PrevHash: prev[a]}
		enc, err := env.SealEncode()
		if err != nil {
			b.Fatal(err)
		}
		version[a]++
		prev[a] = env.Hash
		data = append(data, enc)
		ids = append(ids, id)
	}
	return data, ids
}

// BenchmarkRebuildPipeline is the projector's own work per event in a rebuild (decode on one
// goroutine, fold on another, a waiter for the head), without the stream read.
func BenchmarkRebuildPipeline(b *testing.B) {
	const n, accounts = 100_000, 2_000
	data, ids := benchStream(b, n, accounts)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p := NewProjector(zerolog.Nop())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.WaitFor(ctx, uint64(n)) }()
		decoded := make(chan decodedMsg, feedQueue)
		go func() {
			for i, d := range data {
				m := decodedMsg{position: uint64(i + 1), accountID: ids[i]}
				m.ev, m.err = events.Decode(d)
				decoded <- m
			}
			close(decoded)
		}()
		p.fold(ctx, decoded, nil)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// BenchmarkFleetViews is the cost of the fleet read models over 10,000 accounts: each scans the
// accounts under the projector's read lock, which holds the fold back for that long.
func BenchmarkFleetViews(b *testing.B) {
	const accounts = 10_000
	data, ids := benchStream(b, 4*accounts, accounts)
	p := NewProjector(zerolog.Nop())
	for i, d := range data {
		p.Apply(uint64(i+1), ids[i], d)
	}
	q, err := NewQueries(p, ledger.DefaultCatalogue(), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    QueryRequest
	}{
		{QueryTotals, QueryRequest{}},
		{QueryAccounts, QueryRequest{}},
		{QueryAccounts, QueryRequest{Status: "grace"}},
		{QueryPaygCharges, QueryRequest{Month: "2026-01"}},
	} {
		b.Run(c.name+"/"+c.r.Status, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := q.Answer(context.Background(), c.name, c.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
