package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/web"
)

type historyAnswer struct {
	OK        bool           `json:"ok"`
	AccountID string         `json:"account_id"`
	Position  uint64         `json:"position"`
	AsOf      time.Time      `json:"as_of"`
	Points    []historyPoint `json:"points"`
}

type historyPoint = struct {
	Position  uint64    `json:"position"`
	Version   uint64    `json:"version"`
	At        time.Time `json:"at"`
	Type      string    `json:"type"`
	LicenseID string    `json:"license_id"`
	Feature   string    `json:"feature"`
	Total     string    `json:"total_credits"`
	Allocated string    `json:"allocated_credits"`
	Available string    `json:"available_credits"`
	Shortfall string    `json:"shortfall"`
}

func (h historyAnswer) last() historyPoint {
	if len(h.Points) == 0 {
		return historyPoint{}
	}
	return h.Points[len(h.Points)-1]
}

func TestHistoryFollowsEveryEvent(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	seed(t, l, "acme")
	var h historyAnswer
	require.Equal(t, http.StatusOK, getJSON(t, l.HTTPURL()+"/v1/accounts/acme/history?min_position="+itoa(l.Head()), &h))
	require.True(t, h.OK)
	assert.Equal(t, "acme", h.AccountID)

	type step struct {
		day                       int
		typ, subject, total, used string
	}
	var got []step
	for i, p := range h.Points {
		assert.Equal(t, uint64(i+1), p.Version, "one point per event, in order")
		if i > 0 {
			assert.Greater(t, p.Position, h.Points[i-1].Position)
		}
		got = append(got, step{int(p.At.Sub(testledger.Epoch) / (24 * time.Hour)), p.Type, p.LicenseID + p.Feature, p.Total, p.Allocated})
	}
	want := []step{
		{0, "LicensePurchased", "L-sales", "0", "0"},
		{0, "LicenseActivated", "L-sales", "1000", "0"},
		{0, "LicensePurchased", "AZ-1", "1000", "0"},
		{0, "LicenseActivated", "AZ-1", "1300", "0"},
		{0, "ContractUpgraded", "AZ-1", "1500", "0"},
		{3, "LicensePurchased", "L-short", "1500", "0"},
		{3, "LicenseActivated", "L-short", "1750", "0"},
		{5, "CreditsAllocated", "container_security", "1750", "400"},
		{8, "CreditsAllocated", "file_security", "1750", "550"},
		{8, "CreditsAllocated", "email_security", "1750", "650"},
		{10, "PaygContractPurchased", "", "1750", "650"},
		{10, "PaygContractActivated", "", "1750", "650"},
		{10, "CreditsReleased", "file_security", "1750", "500"},
		{10, "BillingModelSwitched", "file_security", "1750", "500"},
		{32, "LicenseRenewed", "AZ-1", "1750", "500"},
		{35, "LicenseExpired", "L-short", "1500", "500"},
	}
	assert.Equal(t, want, got)
	last := h.last()
	assert.Equal(t, "1000", last.Available)
	assert.Equal(t, "0", last.Shortfall)
	assert.Equal(t, last.Position, h.Position)
	assert.Equal(t, testledger.Epoch.Add(35*24*time.Hour), last.At, "the expiry is recorded when the processor ran")
}

func TestHistoryAsOfStopsAtThatMoment(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	seed(t, l, "acme")
	var h historyAnswer
	asOf := testledger.Epoch.Add(6 * 24 * time.Hour).Format(time.RFC3339)
	require.Equal(t, http.StatusOK, getJSON(t, l.HTTPURL()+"/v1/accounts/acme/history?as_of="+asOf, &h))
	require.Len(t, h.Points, 8, "the events of days 0 to 5")
	assert.Equal(t, testledger.Epoch.Add(6*24*time.Hour), h.AsOf)
	last := h.last()
	assert.Equal(t, "CreditsAllocated", last.Type)
	assert.Equal(t, "1750", last.Total)
	assert.Equal(t, "400", last.Allocated)
	assert.Equal(t, last.Position, h.Position)

	before := testledger.Epoch.Add(-time.Hour).Format(time.RFC3339)
	h = historyAnswer{}
	require.Equal(t, http.StatusOK, getJSON(t, l.HTTPURL()+"/v1/accounts/acme/history?as_of="+before, &h))
	assert.Empty(t, h.Points)
	assert.Zero(t, h.Position)
}

func TestHistoryRejectsBadRequests(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	newSender(t, l, "acme").buy("L1", "sales", "10", 12, true)
	base := l.HTTPURL() + "/v1/accounts/"
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"nobody/history", http.StatusNotFound, "not_found"},
		{"bad%20id/history", http.StatusBadRequest, "invalid_argument"},
		{"bad.id/history", http.StatusBadRequest, "invalid_argument"},
		{"acme/history?as_of=yesterday", http.StatusBadRequest, "invalid_argument"},
		{"acme/history?min_position=-1", http.StatusBadRequest, "invalid_argument"},
		{"acme/history?min_position=x", http.StatusBadRequest, "invalid_argument"},
	} {
		status, code := errorCode(t, base+tc.path)
		assert.Equal(t, tc.status, status, tc.path)
		assert.Equal(t, tc.code, code, tc.path)
	}
}

func TestHistoryWaitsForMinPositionThenGivesUp(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	a := newSender(t, l, "acme").buy("L1", "sales", "10", 12, true)
	// The wait for a position just written is the default one: the projector can take longer
	// than a short wait on a loaded machine. Giving up is shown with a short wait.
	srv, short := dashboard(t, l), dashboard(t, l, web.WithMaxWait(100*time.Millisecond))
	var h historyAnswer
	require.Equal(t, http.StatusOK, getJSON(t, srv.URL+"/v1/accounts/acme/history?min_position="+itoa(a.Position), &h))
	assert.Len(t, h.Points, 2)
	status, code := errorCode(t, short.URL+"/v1/accounts/acme/history?min_position="+itoa(a.Position+100))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", code)
}

// record encodes one event of acct as the store holds it.
func record(t *testing.T, acct string, version uint64, at time.Time, p events.Payload) ledger.Record {
	t.Helper()
	raw, err := events.EncodePayload(p)
	require.NoError(t, err)
	env := events.Envelope{EventID: "e", Type: p.EventType(), SchemaVersion: events.SchemaVersion(p.EventType()), AccountID: acct,
		Version: version, OccurredAt: at, CommandID: "c", CorrelationID: "c", Payload: raw, PrevHash: events.ZeroHash}
	require.NoError(t, env.Seal())
	data, err := events.Encode(&env)
	require.NoError(t, err)
	return ledger.Record{AccountID: acct, Data: data, Position: version * 2}
}

func TestFoldHistoryBoundsAndChecks(t *testing.T) {
	t.Parallel()
	at := testledger.Epoch
	one := decimal.NewFromInt(1)
	recs := make([]ledger.Record, 0, web.MaxHistoryPoints+5)
	for v := uint64(1); v <= web.MaxHistoryPoints+5; v++ {
		recs = append(recs, record(t, "big", v, at, events.CreditsAllocated{Feature: "container_security", Credits: one}))
	}
	h, err := web.FoldHistory("big", recs, nil)
	require.NoError(t, err)
	assert.True(t, h.Truncated)
	require.Len(t, h.Points, web.MaxHistoryPoints)
	assert.Equal(t, uint64(6), h.Points[0].Version, "the oldest points are left off")
	assert.True(t, h.Points[len(h.Points)-1].AllocatedCredits.Equal(decimal.NewFromInt(web.MaxHistoryPoints+5)), "but every event is folded")

	_, err = web.FoldHistory("big", []ledger.Record{recs[0], recs[2]}, nil)
	assert.ErrorIs(t, err, ledger.ErrInternal, "a gap in versions is reported, not drawn")
	_, err = web.FoldHistory("big", []ledger.Record{{AccountID: "big", Data: []byte("{"), Position: 1}}, nil)
	assert.ErrorIs(t, err, ledger.ErrInternal, "an undecodable event is reported")
}
