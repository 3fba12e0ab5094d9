package jetstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// ev is account's record at version; check makes it expect the version before.
func ev(account string, version uint64, check bool) ledger.Record {
	return ledger.Record{AccountID: account, Version: version, CheckVersion: check, ExpectedVersion: version - 1,
		Data: []byte(fmt.Sprintf(`{"account_id":%q,"version":%d}`, account, version))}
}

// TestVersionsOfTwoStoresOnOneStream: two stores on one stream (two nodes) each map versions to
// positions from what they saw. The one that did not see the other's append holds a stale
// position for the version it knows: the server refuses its append at that version, with the
// other account of the batch (nothing of it is stored), and at the version it now reads the
// append lands. A message on the account that carries no version (a foreign publish) refuses an
// append at the version before it, and reads report it.
func TestVersionsOfTwoStoresOnOneStream(t *testing.T) {
	t.Parallel()
	nc, js := bareJetStream(t)
	ctx := context.Background()
	a, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	b, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)

	_, err = a.Append(ctx, []ledger.Record{ev("x", 1, true)})
	require.NoError(t, err)
	_, err = b.Append(ctx, []ledger.Record{ev("x", 2, true)})
	require.NoError(t, err, "b reads x's version it has not seen from the stream")
	// a still maps version 1 to x's first message: the server refuses, and y goes with it.
	_, err = a.Append(ctx, []ledger.Record{ev("y", 1, true), ev("x", 2, true)})
	require.ErrorIs(t, err, ledger.ErrConflict)
	recs, err := a.ReadAccount(ctx, "y", 0)
	require.NoError(t, err)
	assert.Empty(t, recs, "nothing of the refused batch is stored")
	v, err := a.AccountVersion(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	_, err = a.Append(ctx, []ledger.Record{ev("y", 1, true), ev("x", 3, true)})
	require.NoError(t, err, "at the version it now reads, a's append lands")

	// A foreign message on x: neither store's position for version 3 holds any more.
	foreign, err := js.Publish(ctx, jetstore.DefaultSubjects.Of("x"), []byte(`{"forged":true}`))
	require.NoError(t, err)
	for _, st := range []*jetstore.Store{a, b} {
		_, err = st.Append(ctx, []ledger.Record{ev("x", 4, true)})
		require.ErrorIs(t, err, ledger.ErrConflict)
		_, err = st.AccountVersion(ctx, "x")
		require.ErrorIs(t, err, events.ErrNoVersion)
	}
	recs, err = b.ReadAccount(ctx, "x", 2)
	require.NoError(t, err)
	require.Len(t, recs, 3, "versions 2 and 3, and the foreign message after them")
	assert.Equal(t, []uint64{2, 3, 0}, []uint64{recs[0].Version, recs[1].Version, recs[2].Version})
	assert.Equal(t, foreign.Sequence, recs[2].Position)
}

// TestVersionsRepeatedIsRefused: a second message at an account's last version (a forged or
// replayed event) contradicts the position this store holds for that version: an append
// expecting the version is refused, although the version read from the stream matches.
func TestVersionsRepeatedIsRefused(t *testing.T) {
	t.Parallel()
	nc, js := bareJetStream(t)
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{ev("x", 1, true)})
	require.NoError(t, err)
	_, err = js.Publish(ctx, jetstore.DefaultSubjects.Of("x"), ev("x", 1, false).Data)
	require.NoError(t, err)
	for range 2 { // the refusal is not learned away
		_, err = st.Append(ctx, []ledger.Record{ev("x", 2, true)})
		require.ErrorIs(t, err, ledger.ErrConflict)
		_, err = st.AccountVersion(ctx, "x")
		require.Error(t, err, "the account's versions do not grow with its positions")
	}
}

// chained is account's record at version, with its chain hashes.
func chained(account string, version uint64, hash, prev string) ledger.Record {
	r := ev(account, version, true)
	r.Data = []byte(fmt.Sprintf(`{"account_id":%q,"version":%d,"hash":%q,"prev_hash":%q}`, account, version, hash, prev))
	return r
}

// TestVersionsFirstSightChecksTheChain: a store that meets an account for the first time (a node
// just restarted or took the partition over) learns its version from the last message. A foreign
// message that repeats the version the writer expects, written after the writer loaded the account,
// must not be a ground to append on: the record appended names another predecessor (prev_hash),
// so the append is refused and nothing is stored; on the true predecessor it lands.
func TestVersionsFirstSightChecksTheChain(t *testing.T) {
	t.Parallel()
	nc, js := bareJetStream(t)
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{chained("x", 1, "h1", "")})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{chained("z", 1, "z1", "")})
	require.NoError(t, err)
	_, err = js.Publish(ctx, jetstore.DefaultSubjects.Of("x"), chained("x", 1, "forged", "").Data)
	require.NoError(t, err)

	fresh, err := jetstore.Open(ctx, nc, jetstore.Config{}) // knows no account yet
	require.NoError(t, err)
	_, err = fresh.Append(ctx, []ledger.Record{chained("x", 2, "h2", "h1")})
	require.ErrorIs(t, err, ledger.ErrConflict, "the last message of x is not h1")
	recs, err := fresh.ReadAccount(ctx, "x", 0)
	require.NoError(t, err)
	assert.Len(t, recs, 2, "nothing appended on the forged message")
	_, err = fresh.Append(ctx, []ledger.Record{chained("z", 2, "z2", "z1")})
	require.NoError(t, err, "an account whose last message is the predecessor named takes the append")
}
