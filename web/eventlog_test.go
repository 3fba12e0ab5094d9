package web_test

import (
	"encoding/json"
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

// chain builds n sealed, chained events of one account as stored records.
func chain(t *testing.T, account string, n int) []ledger.Record {
	t.Helper()
	prev := events.ZeroHash
	var recs []ledger.Record
	for i := 1; i <= n; i++ {
		raw, err := events.EncodePayload(events.CreditsAllocated{Feature: "file_security", Credits: decimal.NewFromInt(int64(i))})
		require.NoError(t, err)
		env := events.Envelope{EventID: "e", Type: events.TypeCreditsAllocated, SchemaVersion: 1, AccountID: account,
			Version: uint64(i), OccurredAt: testledger.Epoch.Add(time.Duration(i) * time.Hour), CommandID: "c", Payload: raw, PrevHash: prev}
		require.NoError(t, env.Seal())
		b, err := events.Encode(&env)
		require.NoError(t, err)
		recs = append(recs, ledger.Record{AccountID: account, Data: b, Position: uint64(10 + i)})
		prev = env.Hash
	}
	return recs
}

func statuses(l web.EventLog) []string {
	out := []string{}
	for _, e := range l.Events {
		out = append(out, e.Chain)
	}
	return out
}

func TestCheckChain(t *testing.T) {
	t.Parallel()
	recs := chain(t, "acme", 4)
	ok := web.CheckChain("acme", recs, nil)
	assert.True(t, ok.ChainOK)
	assert.Equal(t, []string{"ok", "ok", "ok", "ok"}, statuses(ok))
	assert.Equal(t, uint64(14), ok.Position)

	// An altered event: its own hash fails; the next one still links to the stored hash.
	altered := append([]ledger.Record(nil), recs...)
	var m map[string]any
	require.NoError(t, json.Unmarshal(recs[1].Data, &m))
	m["payload"] = map[string]any{"feature": "file_security", "credits": "2000"}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	altered[1].Data = b
	got := web.CheckChain("acme", altered, nil)
	assert.False(t, got.ChainOK)
	assert.Equal(t, 1, got.Broken)
	assert.Equal(t, []string{"ok", web.ChainHashMismatch, "ok", "ok"}, statuses(got))

	// A removed event: the next one's prev_hash links to nothing stored.
	removed := []ledger.Record{recs[0], recs[2], recs[3]}
	assert.Equal(t, []string{"ok", web.ChainBrokenLink, "ok"}, statuses(web.CheckChain("acme", removed, nil)))

	// Bytes that are no envelope.
	junk := []ledger.Record{recs[0], {AccountID: "acme", Data: []byte("{"), Position: 99}}
	assert.Equal(t, []string{"ok", web.ChainUndecodable}, statuses(web.CheckChain("acme", junk, nil)))

	// An event sealed under the legacy hash rule (stored before RFC 8785) checks out too.
	raw, err := events.EncodePayload(events.CreditsAllocated{Feature: "file_security", Credits: decimal.NewFromInt(1)})
	require.NoError(t, err)
	legacy := events.Envelope{EventID: "e", Type: events.TypeCreditsAllocated, SchemaVersion: 1, AccountID: "old", Version: 1,
		OccurredAt: testledger.Epoch, CommandID: "c", Payload: raw, PrevHash: events.ZeroHash}
	require.NoError(t, legacy.SealLegacy())
	lb, err := events.Encode(&legacy)
	require.NoError(t, err)
	assert.Equal(t, []string{"ok"}, statuses(web.CheckChain("old", []ledger.Record{{AccountID: "old", Data: lb, Position: 1}}, nil)))

	// as_of cuts the list at that time.
	at := testledger.Epoch.Add(2 * time.Hour)
	assert.Len(t, web.CheckChain("acme", recs, &at).Events, 2)
}

func TestEventLogRoute(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	s := newSender(t, l, "logacct")
	a := s.allocateAfterBuy()
	var got web.EventLog
	require.Equal(t, http.StatusOK, getJSON(t, l.HTTPURL()+"/v1/accounts/logacct/log?min_position="+itoa(a.Position), &got))
	assert.True(t, got.ChainOK)
	require.Len(t, got.Events, 3)
	assert.Equal(t, "LicensePurchased", got.Events[0].Type)
	assert.Equal(t, events.ZeroHash, got.Events[0].PrevHash)
	assert.Equal(t, got.Events[0].Hash, got.Events[1].PrevHash)
	assert.Equal(t, a.Position, got.Position)
	status, code := errorCode(t, l.HTTPURL()+"/v1/accounts/nobody/log")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", code)
}
