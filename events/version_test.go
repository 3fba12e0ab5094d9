package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
)

func TestVersionOf(t *testing.T) {
	t.Parallel()
	env := events.Envelope{EventID: "e-1", Type: events.TypeAutoRenewSet, SchemaVersion: 1, AccountID: "acme",
		Version: 42, OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), CommandID: "c-1", CorrelationID: "c-1",
		Payload: []byte(`{"license_id":"L-1","on":true,"version":7}`), PrevHash: events.ZeroHash}
	stored, err := env.SealEncode()
	require.NoError(t, err)
	v, err := events.VersionOf(stored)
	require.NoError(t, err)
	assert.Equal(t, uint64(42), v, "the envelope's version, not a payload member of the same name")
	require.NoError(t, env.SealLegacy())
	legacy, err := events.Encode(&env)
	require.NoError(t, err)
	v, err = events.VersionOf(legacy)
	require.NoError(t, err)
	assert.Equal(t, uint64(42), v)
	for _, bad := range []string{``, `{`, `[]`, `{"version":0}`, `{"version":-1}`, `{"version":1.5}`, `{"type":"x"}`, `{"version":"3"}`, `{"version":1,"version":2}`} {
		_, err := events.VersionOf([]byte(bad))
		assert.ErrorIs(t, err, events.ErrNoVersion, "%q", bad)
	}
}

// FuzzLinkOf: LinkOf reads stored bytes of any shape without panicking, fails only with
// ErrNoVersion, and agrees with a full Decode on every envelope Decode accepts (the store
// trusts it to place a record in its account's chain).
func FuzzLinkOf(f *testing.F) {
	f.Add([]byte(`{"type":"AutoRenewSet","schema_version":1,"version":3,"hash":"ab","prev_hash":"cd","payload":{"license_id":"L","enabled":true}}`))
	f.Add([]byte(`{"version":0}`))
	f.Add([]byte(`{"version":-1,"hash":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := events.LinkOf(data)
		if err != nil {
			if !errors.Is(err, events.ErrNoVersion) {
				t.Fatalf("error does not wrap ErrNoVersion: %v", err)
			}
			return
		}
		if l.Version == 0 {
			t.Fatal("a link at version 0")
		}
		ev, derr := events.Decode(data)
		if derr != nil {
			return
		}
		if ev.Version != l.Version || ev.Hash != l.Hash || ev.PrevHash != l.PrevHash {
			t.Fatalf("LinkOf %+v, Decode v%d %q %q", l, ev.Version, ev.Hash, ev.PrevHash)
		}
	})
}
