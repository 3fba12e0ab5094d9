package jetstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestFirstSinceFindsByStoredTime: FirstSince is the first position stored at or after a time,
// by JetStream's stored time: from before the first message, the first; from just after one,
// the next; from after the last, none.
func TestFirstSinceFindsByStoredTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, _ := bareJetStream(t)
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	var at []time.Time
	for _, acct := range []string{"a", "b", "c"} {
		pos, err := st.Append(ctx, []ledger.Record{ev(acct, 1, false)})
		require.NoError(t, err)
		stored, err := st.StoredAt(ctx, pos[0])
		require.NoError(t, err)
		at = append(at, stored)
	}
	require.True(t, at[0].Before(at[1]) && at[1].Before(at[2]), "three stored times apart: %v", at)

	for _, tc := range []struct {
		name  string
		since time.Time
		want  uint64
		found bool
	}{
		{"before the first", at[0].Add(-time.Hour), 1, true},
		{"at the first", at[0], 1, true},
		{"just after the first", at[0].Add(time.Nanosecond), 2, true},
		{"at the last", at[2], 3, true},
		{"after the last", at[2].Add(time.Nanosecond), 0, false},
	} {
		pos, found, err := st.FirstSince(ctx, tc.since)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.found, found, tc.name)
		assert.Equal(t, tc.want, pos, tc.name)
	}
}

// TestClaimCommandsCreatedTellsCreatedFromFound: ClaimCommandsCreated says which claims it
// created, on the atomic batch's path (all new) and on the one-by-one path (some held, by the
// same account or another), as `command-ids record` counts them.
func TestClaimCommandsCreatedTellsCreatedFromFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := bareJetStream(t)
	c, err := jetstore.OpenCommandClaims(ctx, js, 1)
	require.NoError(t, err)

	holders, created, err := c.ClaimCommandsCreated(ctx, []string{"n1", "n2"}, []string{"a", "b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, holders)
	assert.Equal(t, []bool{true, true}, created, "one atomic batch")

	holders, created, err = c.ClaimCommandsCreated(ctx, []string{"n1", "n3", "n2"}, []string{"a", "c", "x"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c", "b"}, holders)
	assert.Equal(t, []bool{false, true, false}, created, "found for the same account, created, held by another")

	holders, created, err = c.ClaimCommandsCreated(ctx, []string{"n4"}, []string{"d"})
	require.NoError(t, err)
	assert.Equal(t, []string{"d"}, holders)
	assert.Equal(t, []bool{true}, created, "a claim alone")
}
