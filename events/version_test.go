package events_test

import (
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
