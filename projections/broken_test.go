package projections_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// TestBrokenHookHearsOfEachBrokenAccountOnce: the hook is told of the first message parked on
// each account, with its position, before the parked count shows it; events that continue
// their accounts (the writer's own) and further parked messages of a reported account are not
// reported.
func TestBrokenHookHearsOfEachBrokenAccountOnce(t *testing.T) {
	t.Parallel()
	type report struct {
		account  string
		position uint64
		parked   int // the parked count the hook saw being reported
	}
	var got []report
	var p *projections.Projector
	p = projections.NewProjector(zerolog.Nop(), projections.WithBrokenHook(func(id string, pos uint64, reason string) {
		assert.NotEmpty(t, reason)
		got = append(got, report{id, pos, parkedUnlocked(p)})
	}))
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	buy := func(id string) events.Payload {
		return events.LicensePurchased{LicenseID: id, Source: ledger.SourceSales, Credits: decimal.NewFromInt(1), TermMonths: 12,
			PurchasedAt: at, ContractStart: at, ExpiresAt: at.AddDate(1, 0, 0)}
	}
	p.Apply(1, "a", storedAt(t, "a", 1, at, buy("L1")))
	p.Apply(2, "b", storedAt(t, "b", 1, at, buy("L2")))
	p.Apply(3, "a", []byte(`{"forged":true}`))          // undecodable: reported
	p.Apply(4, "a", storedAt(t, "a", 2, at, buy("L3"))) // continues a: applied
	p.Apply(5, "a", storedAt(t, "a", 9, at, buy("L4"))) // a again: not reported twice
	p.Apply(6, "b", storedAt(t, "c", 2, at, buy("L5"))) // c's event on b's subject
	p.Apply(7, "b", storedAt(t, "b", 2, at, buy("L6"))) // b's own next event: applied
	assert.Equal(t, []report{{"a", 3, 0}, {"b", 6, 2}}, got, "once per account, before the count moves")
	_, n := p.ParkedMessages()
	assert.Equal(t, 3, n)
}

// parkedUnlocked reads the parked count from inside the hook (which runs under the projector's
// lock) without taking it: the hook runs on the applying goroutine, this test's own.
func parkedUnlocked(p *projections.Projector) int { return projections.ParkedCountUnlocked(p) }
