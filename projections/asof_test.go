package projections_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// records seals payloads as one account's chain at the given positions and times.
func records(t *testing.T, acc string, at []time.Time, positions []uint64, ps ...events.Payload) []ledger.Record {
	t.Helper()
	prev := events.ZeroHash
	var out []ledger.Record
	for i, p := range ps {
		raw, err := events.EncodePayload(p)
		require.NoError(t, err)
		e := events.Envelope{EventID: "e", Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()),
			AccountID: acc, Version: uint64(i + 1), OccurredAt: at[i], CommandID: "c", CorrelationID: "c", Payload: raw, PrevHash: prev}
		require.NoError(t, e.Seal())
		data, err := events.Encode(&e)
		require.NoError(t, err)
		out = append(out, ledger.Record{AccountID: acc, Data: data, Position: positions[i]})
		prev = e.Hash
	}
	return out
}

func TestFoldAsOf(t *testing.T) {
	t.Parallel()
	expires := t0.AddDate(0, 1, 0)
	recs := records(t, "a", []time.Time{t0, t0, t0.Add(time.Hour)}, []uint64{3, 5, 9},
		events.LicensePurchased{LicenseID: "L", Source: "sales", Credits: decimal.NewFromInt(100), TermMonths: 1, PurchasedAt: t0, ContractStart: t0, ExpiresAt: expires},
		events.LicenseActivated{LicenseID: "L", ActivatedAt: t0},
		events.CreditsAllocated{Feature: "file_security", Credits: decimal.NewFromInt(40)},
	)
	cases := []struct {
		name      string
		at        projections.AsOf
		events    int
		position  uint64
		total     string
		shortfall string
		due       int
	}{
		{"before anything", projections.AsOf{Time: t0.Add(-time.Nanosecond)}, 0, 0, "0", "0", 0},
		{"at a position between two of its events", projections.AsOf{Position: 8}, 2, 5, "100", "0", 0},
		{"at the time of the first events", projections.AsOf{Time: t0}, 2, 5, "100", "0", 0},
		{"at the last event", projections.AsOf{Time: t0.Add(time.Hour)}, 3, 9, "100", "0", 0},
		{"a nanosecond before the term ends", projections.AsOf{Time: expires.Add(-time.Nanosecond)}, 3, 9, "100", "0", 0},
		{"when the term ends, with no expiry recorded yet", projections.AsOf{Time: expires}, 3, 9, "0", "40", 1},
		{"a position bound applies nothing due", projections.AsOf{Position: 9}, 3, 9, "100", "0", 0},
	}
	for _, c := range cases {
		st, err := projections.FoldAsOf("a", recs, c.at)
		require.NoError(t, err, c.name)
		assert.Equal(t, c.events, st.Events, c.name)
		assert.Equal(t, c.position, st.Position, c.name)
		assert.Equal(t, c.total, st.Account.TotalCredits().String(), c.name)
		assert.Equal(t, c.shortfall, st.Account.Shortfall().String(), c.name)
		assert.Len(t, st.Due, c.due, c.name)
	}
	renewing := records(t, "r", []time.Time{t0, t0}, []uint64{1, 2},
		events.LicensePurchased{LicenseID: "R", Source: "sales", Credits: decimal.NewFromInt(7), TermMonths: 1, AutoRenew: true, PurchasedAt: t0, ContractStart: t0, ExpiresAt: expires},
		events.LicenseActivated{LicenseID: "R", ActivatedAt: t0},
	)
	st, err := projections.FoldAsOf("r", renewing, projections.AsOf{Time: expires.AddDate(1, 0, 0)})
	require.NoError(t, err)
	assert.Len(t, st.Due, 2, "two terms renewed by then")
	assert.Equal(t, expires.AddDate(2, 0, 0), st.Account.Licenses["R"].ExpiresAt)
	assert.Equal(t, "7", st.Account.TotalCredits().String())

	_, err = projections.FoldAsOf("a", append(recs[:1:1], recs[2]), projections.AsOf{})
	assert.ErrorContains(t, err, "does not follow", "a version gap is not folded over")
}

func httpGet(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return resp.StatusCode, m
}

func TestAsOfQueriesOverNATSAndHTTP(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	ctx := context.Background()
	var last uint64
	send := func(name string, body map[string]any) {
		body["account_id"], body["command_id"] = "acc", name
		a, err := l.Client.Send(ctx, name, body)
		require.NoError(t, err)
		last = a.Position
	}
	send("purchase_license", map[string]any{"license_id": "L1", "source": "sales", "credits": "100", "term_months": 1, "auto_renew": false})
	send("activate_license", map[string]any{"license_id": "L1"})
	send("allocate_credits", map[string]any{"feature": "file_security", "credits": "40"})
	start := l.Clock.Now()
	l.Clock.Advance(45 * 24 * time.Hour) // the term ended 15 days ago; the expiry processor has not run
	now := l.Clock.Now()

	base := l.HTTPURL() + "/v1/accounts/acc/"
	asOf := func(t time.Time) string { return "?as_of=" + url.QueryEscape(t.Format(time.RFC3339Nano)) }
	code, live := httpGet(t, base+"balance?min_position="+strconv.FormatUint(last, 10)) // the projector may lag
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "100", live["total_credits"], "the live projection has no expiry yet")

	code, past := httpGet(t, base+"balance"+asOf(now))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "0", past["total_credits"], "as of now the license had expired")
	assert.Equal(t, "40", past["shortfall"])
	assert.Equal(t, float64(1), past["unrecorded_events"])
	assert.Equal(t, now.Format(time.RFC3339), past["as_of"])
	assert.Equal(t, float64(last), past["position"], "the last stored event folded")

	raw, err := l.Client.Query(ctx, "balance", map[string]any{"account_id": "acc", "as_of": now.Format(time.RFC3339)})
	require.NoError(t, err)
	var overNATS map[string]any
	require.NoError(t, json.Unmarshal(raw, &overNATS))
	assert.Equal(t, past, overNATS, "NATS and HTTP answer the same")

	_, lic := httpGet(t, base+"licenses"+asOf(now))
	assert.Equal(t, "expired", lic["licenses"].([]any)[0].(map[string]any)["status"])
	_, lic = httpGet(t, base+"licenses"+asOf(start))
	assert.Equal(t, "active", lic["licenses"].([]any)[0].(map[string]any)["status"])
	code, sw := httpGet(t, base+"switches"+asOf(start))
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, sw, "features")

	code, body := httpGet(t, base+"balance"+asOf(start.Add(-time.Second)))
	assert.Equal(t, http.StatusNotFound, code, "%v", body)
	// The zero time is a time before the first event like any other (it was read as "no bound").
	code, zero := httpGet(t, base+"balance?as_of=0001-01-01T00:00:00Z")
	assert.Equal(t, http.StatusNotFound, code, "%v", zero)
	assert.Equal(t, body["error"].(map[string]any)["code"], zero["error"].(map[string]any)["code"])
	_, err = l.Client.Query(ctx, "balance", map[string]any{"account_id": "acc", "as_of": "0001-01-01T00:00:00Z"})
	assert.ErrorIs(t, err, ledger.ErrNotFound)
	code, body = httpGet(t, base+"balance?as_of=yesterday")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "invalid_argument", body["error"].(map[string]any)["code"])

	l.Sweep()
	require.Eventually(t, func() bool {
		_, m := httpGet(t, base+"balance")
		return m["total_credits"] == "0"
	}, 10*time.Second, 10*time.Millisecond)
	_, after := httpGet(t, base+"balance"+asOf(now))
	assert.Equal(t, float64(0), after["unrecorded_events"], "now the expiry is recorded")
	_, live = httpGet(t, base+"balance")
	for _, k := range []string{"total_credits", "allocated_credits", "available_credits", "shortfall", "allocations"} {
		assert.Equal(t, live[k], past[k], "as_of agreed with what the projection shows once the expiry is recorded: %s", k)
	}
}
