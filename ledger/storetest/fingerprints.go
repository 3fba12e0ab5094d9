package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// fingerprints checks Fingerprints (and FingerprintsNear, for a store that has it, on a settled
// store): one per position asked, in order, for events and ownership records alike; the same
// message read again gives the same one, another message another one; nil past the head and at
// position 0. A store of another history (a fresh one, here) gives another fingerprint at a
// position whose message differs, and the same one where the message is the same.
func fingerprints(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	n := partitionCount(st)
	a, b := inPartition(t, "a", 1, n), inPartition(t, "b", 2, n)
	mustAppend := func(st ledger.Store, recs ...ledger.Record) {
		_, err := st.Append(ctx, recs)
		require.NoError(t, err)
	}
	mustAppend(st, first(a, "a1", 0), first(b, "b1", 0))
	_, err := st.Fence(ctx, []ledger.FenceClaim{claim(1, "node-a", 1, 0)})
	require.NoError(t, err)
	mustAppend(st, at(a, "a2", 2))
	head, err := st.Read(ctx, 1, func(ledger.Record) error { return nil })
	require.NoError(t, err)
	require.Equal(t, uint64(4), head, "two events, an ownership record, an event")

	ps := []uint64{4, 1, 2, 3, 0, head + 1, 2}
	got, err := st.Fingerprints(ctx, ps)
	require.NoError(t, err)
	require.Len(t, got, len(ps))
	for i, p := range ps[:4] {
		assert.NotEmpty(t, got[i], "position %d", p)
	}
	assert.Nil(t, got[4], "nothing is at position 0")
	assert.Nil(t, got[5], "nothing is past the head")
	assert.Equal(t, got[2], got[6], "the same message, the same fingerprint")
	seen := map[string]uint64{}
	for i, p := range ps[:4] {
		prev, dup := seen[string(got[i])]
		assert.False(t, dup, "positions %d and %d hold different messages, with the same fingerprint", prev, p)
		seen[string(got[i])] = p
	}
	again, err := st.Fingerprints(ctx, ps)
	require.NoError(t, err)
	assert.Equal(t, got, again, "read again")
	if nr, ok := st.(ledger.NearReader); ok {
		near, err := nr.FingerprintsNear(ctx, ps)
		require.NoError(t, err)
		assert.Equal(t, got, near, "near, on a settled store")
	}

	// Another history: the same first message, then another second one.
	other, _ := newStore(t)
	mustAppend(other, first(a, "a1", 0), first(b, "b1-other", 0))
	fps, err := other.Fingerprints(ctx, []uint64{1, 2, 3})
	require.NoError(t, err)
	require.Len(t, fps, 3)
	assert.Equal(t, got[1], fps[0], "the same message at position 1")
	assert.NotEqual(t, got[2], fps[1], "another message at position 2")
	assert.Nil(t, fps[2], "past that store's head")
}
