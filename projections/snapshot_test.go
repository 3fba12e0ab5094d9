package projections_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// memSnapshots keeps checkpoints in memory: the snapshot store contract, not JetStream.
type memSnapshots struct {
	mu   sync.Mutex
	data map[string][]byte
}

func (m *memSnapshots) Save(_ context.Context, name string, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[name] = append([]byte(nil), b...)
	return nil
}

func (m *memSnapshots) Load(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[name], nil
}

func encoded(t *testing.T, account string, version uint64, p events.Payload) []byte {
	t.Helper()
	raw, err := events.EncodePayload(p)
	require.NoError(t, err)
	env := events.Envelope{EventID: "e", Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()),
		AccountID: account, Version: version, OccurredAt: time.Unix(0, 0).UTC(), CommandID: "c", Payload: raw, PrevHash: events.ZeroHash}
	require.NoError(t, env.Seal())
	b, err := events.Encode(&env)
	require.NoError(t, err)
	return b
}

// A checkpoint restores the read models and their position exactly, including an account that
// holds no license (only a PAYG contract), and redelivered events at or below it are skipped.
func TestCheckpointRestoresReadModels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	msgs := []struct {
		account string
		version uint64
		p       events.Payload
	}{
		{"a", 1, events.LicensePurchased{LicenseID: "L", Source: "sales", Credits: decimal.NewFromInt(100), TermMonths: 12, AutoRenew: true, ContractStart: now, PurchasedAt: now, ExpiresAt: now.AddDate(1, 0, 0)}},
		{"a", 2, events.LicenseActivated{LicenseID: "L", ActivatedAt: now}},
		{"a", 3, events.CreditsAllocated{Feature: "file_security", Credits: decimal.RequireFromString("12.5")}},
		{"b", 1, events.PaygContractPurchased{ContractID: "P", PurchasedAt: now}},
	}
	live := projections.NewProjector(zerolog.Nop())
	for i, m := range msgs {
		live.Apply(uint64(i+1), m.account, encoded(t, m.account, m.version, m.p))
	}
	store := &memSnapshots{data: map[string][]byte{}}
	live.UseSnapshots(store, 1)
	live.SaveCheckpoint(ctx)

	restored := projections.NewProjector(zerolog.Nop())
	pos, err := restored.Restore(ctx, store)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), pos)
	q1, err := projections.NewQueries(live, ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	q2, err := projections.NewQueries(restored, ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	for _, acct := range []string{"a", "b"} {
		for _, name := range []string{projections.QueryBalance, projections.QueryLicenses, projections.QuerySwitches} {
			want, err := q1.Answer(ctx, name, projections.QueryRequest{AccountID: acct})
			require.NoError(t, err)
			got, err := q2.Answer(ctx, name, projections.QueryRequest{AccountID: acct})
			require.NoError(t, err)
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			assert.JSONEq(t, string(wj), string(gj), "%s %s", acct, name)
		}
	}
	// The fleet read models come back too (their account index is rebuilt on restore).
	for _, name := range projections.FleetQueries {
		r := projections.QueryRequest{}
		if name == projections.QueryPaygCharges {
			r.Month = "2026-02"
		}
		want, err := q1.Answer(ctx, name, r)
		require.NoError(t, err)
		got, err := q2.Answer(ctx, name, r)
		require.NoError(t, err)
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		assert.JSONEq(t, string(wj), string(gj), "%s", name)
	}
	// Redelivery of an applied event changes nothing; the next one applies on top.
	restored.Apply(1, "c", encoded(t, "c", 1, msgs[3].p))
	restored.Apply(3, "a", encoded(t, "a", 3, msgs[2].p))
	restored.Apply(5, "a", encoded(t, "a", 4, events.CreditsReleased{Feature: "file_security", Credits: decimal.NewFromInt(2), Reason: "requested"}))
	bal, err := q2.Answer(ctx, projections.QueryBalance, projections.QueryRequest{AccountID: "a"})
	require.NoError(t, err)
	assert.Equal(t, "10.5", bal.(projections.Balance).AllocatedCredits.String())
	tot, err := q2.Answer(ctx, projections.QueryTotals, projections.QueryRequest{})
	require.NoError(t, err)
	assert.Equal(t, 2, tot.(projections.Totals).Accounts, "a redelivered event adds no account")
	assert.Equal(t, "10.5", tot.(projections.Totals).Credits.Allocated.String())
}

// A checkpoint keeps the parked messages: an account whose read models stopped behind an
// unreadable message is still reported after a restart.
func TestCheckpointKeepsParkedMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	live := projections.NewProjector(zerolog.Nop())
	live.Apply(1, "a", []byte(`{"not":"an event"}`))
	live.Apply(2, "a", encoded(t, "a", 2, events.LicenseActivated{LicenseID: "L"})) // out of order now
	wantParked, wantN := live.ParkedMessages()
	require.Equal(t, 2, wantN)
	store := &memSnapshots{data: map[string][]byte{}}
	live.UseSnapshots(store, 1)
	live.SaveCheckpoint(ctx)

	restored := projections.NewProjector(zerolog.Nop())
	_, err := restored.Restore(ctx, store)
	require.NoError(t, err)
	parked, n := restored.ParkedMessages()
	assert.Equal(t, wantN, n)
	assert.Equal(t, wantParked, parked)
}
