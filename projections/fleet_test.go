package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// The live fleet read models, kept by re-rendering only the accounts each event changed and
// moving the totals by their difference, answer exactly what a fresh projector fed the same
// events answers, after every event (licenses bought, activated, expired, credits allocated and
// released, a feature switched to PAYG).
func TestFleetCacheMatchesAFreshRender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	dec := decimal.RequireFromString
	buy := func(id, source, credits string) events.Payload {
		return events.LicensePurchased{LicenseID: id, Source: source, Credits: dec(credits), TermMonths: 12, AutoRenew: false,
			ContractStart: now, PurchasedAt: now, ExpiresAt: now.AddDate(0, 1, 0)}
	}
	type msg struct {
		account string
		p       events.Payload
	}
	msgs := []msg{
		{"a", buy("A1", "sales", "100")},
		{"b", buy("B1", "aws_marketplace", "40.5")},
		{"a", events.LicenseActivated{LicenseID: "A1", ActivatedAt: now}},
		{"b", events.LicenseActivated{LicenseID: "B1", ActivatedAt: now}},
		{"a", events.CreditsAllocated{Feature: "file_security", Credits: dec("60")}},
		{"c", buy("C1", "azure_marketplace", "7")},
		{"b", events.CreditsAllocated{Feature: "container_security", Credits: dec("40.25")}},
		{"a", buy("A2", "sales", "50")},
		{"a", events.LicenseActivated{LicenseID: "A2", ActivatedAt: now}},
		{"a", events.CreditsAllocated{Feature: "container_security", Credits: dec("80")}},
		{"a", events.LicenseExpired{LicenseID: "A1", ExpiredAt: now.AddDate(0, 1, 0)}},
		{"b", events.CreditsReleased{Feature: "container_security", Credits: dec("40.25"), Reason: events.ReleaseRequested}},
		{"b", events.PaygContractPurchased{ContractID: "P", PurchasedAt: now}},
		{"b", events.PaygContractActivated{ContractID: "P", ActivatedAt: now}},
		{"b", events.BillingModelSwitched{Feature: "file_security", From: "credits", To: "payg", At: now, NextSwitchAllowedAt: now.AddDate(0, 0, 30)}},
	}
	version := map[string]uint64{}
	data := make([][]byte, len(msgs))
	for i, m := range msgs {
		version[m.account]++
		data[i] = encoded(t, m.account, version[m.account], m.p)
	}
	live := projections.NewProjector(zerolog.Nop())
	lq, err := projections.NewQueries(live, ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	answer := func(q *projections.Queries, name string, r projections.QueryRequest) string {
		out, err := q.Answer(ctx, name, r)
		require.NoError(t, err)
		b, err := json.Marshal(out)
		require.NoError(t, err)
		return string(b)
	}
	for n := range msgs {
		live.Apply(uint64(n+1), msgs[n].account, data[n])
		fresh := projections.NewProjector(zerolog.Nop())
		for i := 0; i <= n; i++ {
			fresh.Apply(uint64(i+1), msgs[i].account, data[i])
		}
		fq, err := projections.NewQueries(fresh, ledger.DefaultCatalogue(), time.Second)
		require.NoError(t, err)
		for _, r := range []struct {
			name string
			req  projections.QueryRequest
		}{
			{projections.QueryTotals, projections.QueryRequest{}},
			{projections.QueryAccounts, projections.QueryRequest{}},
			{projections.QueryPaygContracts, projections.QueryRequest{}},
		} {
			assert.JSONEq(t, answer(fq, r.name, r.req), answer(lq, r.name, r.req), "%s after event %d", r.name, n+1)
		}
	}
	var tot projections.Totals
	require.NoError(t, json.Unmarshal([]byte(answer(lq, projections.QueryTotals, projections.QueryRequest{})), &tot))
	assert.Equal(t, "197.5", tot.Credits.Sold.String())
	assert.Equal(t, "90.5", tot.Credits.Active.String(), "A1 expired")
	assert.Equal(t, "140", tot.Credits.Allocated.String())
	assert.Equal(t, "90", tot.Credits.Shortfall.String(), "a holds 140 on a pool of 50")
	assert.Equal(t, 1, tot.WithShortfall)
	assert.Equal(t, 1, tot.ByFeature["file_security"].AccountsOnPayg)
	assert.Equal(t, 1, tot.ByFeature["container_security"].AccountsAllocating, "only a still allocates container_security")
}

// A fleet larger than one render chunk (a replay, or the first query after a restore) is
// rendered in several turns of the read lock, and every account is in the answer.
func TestFleetRendersInChunks(t *testing.T) {
	t.Parallel()
	const accounts = 2*4096 + 1
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	p := projections.NewProjector(zerolog.Nop())
	for i := range accounts {
		id := fmt.Sprintf("acct-%05d", i)
		p.Apply(uint64(i+1), id, encoded(t, id, 1, events.PaygContractPurchased{ContractID: id, PurchasedAt: now}))
	}
	q, err := projections.NewQueries(p, ledger.DefaultCatalogue(), time.Second)
	require.NoError(t, err)
	out, err := q.Answer(context.Background(), projections.QueryTotals, projections.QueryRequest{})
	require.NoError(t, err)
	assert.Equal(t, accounts, out.(projections.Totals).Accounts)
	seen, cursor := 0, ""
	for range accounts {
		out, err := q.Answer(context.Background(), projections.QueryPaygContracts, projections.QueryRequest{Cursor: cursor, Limit: projections.MaxPageLimit})
		require.NoError(t, err)
		page := out.(projections.PaygContracts)
		seen += len(page.Accounts)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	assert.Equal(t, accounts, seen, "every account, once, over the pages")
}
