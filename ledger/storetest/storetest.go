// Package storetest is the ledger.Store contract as a test suite: every store (the JetStream
// store, the in-memory store) must pass Run. It defines what "a store" means to the writer:
// per-account optimistic concurrency on the account's version, all-or-nothing appends across
// accounts, one total order, reads of one account by version, and what an append whose outcome
// is unknown may have done.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// Uncertain lets the suite provoke, for the next append, an outcome the caller cannot know;
// stored says whether the store should keep the records all the same. It reports false when the
// store cannot provoke that case (it is then skipped).
type Uncertain func(stored bool) bool

// Run runs the contract against fresh stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) (ledger.Store, Uncertain)) {
	t.Run("append and read back in order", func(t *testing.T) { appendAndRead(t, newStore) })
	t.Run("a stale expected version is refused and nothing is stored", func(t *testing.T) { conflict(t, newStore) })
	t.Run("an append across accounts is all or nothing", func(t *testing.T) { atomicAcrossAccounts(t, newStore) })
	t.Run("of racing appends at one version exactly one wins", func(t *testing.T) { oneWinner(t, newStore) })
	t.Run("positions order every append, versions order each account", func(t *testing.T) { ordering(t, newStore) })
	t.Run("an uncertain append stored all or nothing", func(t *testing.T) { uncertain(t, newStore) })
	t.Run("an append that breaks the version rules is refused", func(t *testing.T) { malformed(t, newStore) })
	runFences(t, newStore)
	t.Run("a partition read returns exactly those partitions' records, up to the head", func(t *testing.T) { partitionReads(t, newStore) })
	t.Run("a read without the leader returns what Read returns on a settled store", func(t *testing.T) { nearReads(t, newStore) })
	t.Run("a fingerprint names the message at its position, nil where there is none", func(t *testing.T) { fingerprints(t, newStore) })
}

// body is a record's stored bytes in the suite: an envelope-shaped object that carries its
// version (a store may read it, as the JetStream store does) and a tag the tests compare.
type body struct {
	Tag     string `json:"tag"`
	Version uint64 `json:"version"`
}

// at is account's record tag at version, with no check.
func at(account, tag string, version uint64) ledger.Record {
	data, _ := json.Marshal(body{Tag: tag, Version: version})
	return ledger.Record{AccountID: account, Data: data, Version: version}
}

// first is account's first record of an append that expects the account at version expect.
func first(account, tag string, expect uint64) ledger.Record {
	r := at(account, tag, expect+1)
	r.CheckVersion, r.ExpectedVersion = true, expect
	return r
}

// tags are the records' tags, in order.
func tags(t *testing.T, recs []ledger.Record) []string {
	t.Helper()
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		var b body
		require.NoError(t, json.Unmarshal(r.Data, &b), "record at %d", r.Position)
		out = append(out, b.Tag)
	}
	return out
}

func readAccount(t *testing.T, st ledger.Store, account string, from uint64) []ledger.Record {
	t.Helper()
	recs, err := st.ReadAccount(context.Background(), account, from)
	require.NoError(t, err)
	return recs
}

func accountVersion(t *testing.T, st ledger.Store, account string) uint64 {
	t.Helper()
	v, err := st.AccountVersion(context.Background(), account)
	require.NoError(t, err)
	return v
}

func appendAndRead(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	assert.Zero(t, accountVersion(t, st, "a"), "an account with no record is at version 0")
	p1, err := st.Append(ctx, []ledger.Record{first("a", "a1", 0), at("a", "a2", 2)})
	require.NoError(t, err)
	require.Len(t, p1, 2)
	assert.Equal(t, p1[0]+1, p1[1], "one append's records are consecutive")
	p2, err := st.Append(ctx, []ledger.Record{first("b", "b1", 0)})
	require.NoError(t, err)
	assert.Greater(t, p2[0], p1[1], "positions grow")
	assert.Equal(t, uint64(2), accountVersion(t, st, "a"))
	var order []ledger.Record
	last, err := st.Read(ctx, 1, func(r ledger.Record) error {
		order = append(order, r)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a1", "a2", "b1"}, tags(t, order))
	assert.Equal(t, p2[0], last)
	recs := readAccount(t, st, "a", 0)
	require.Len(t, recs, 2)
	assert.Equal(t, []string{"a1", "a2"}, tags(t, recs))
	assert.Equal(t, []uint64{1, 2}, []uint64{recs[0].Version, recs[1].Version}, "an account read carries versions")
	assert.Equal(t, p1[1], recs[1].Position)
	at, err := st.ReadAt(ctx, p2[0])
	require.NoError(t, err)
	assert.Equal(t, "b", at.AccountID)
	_, err = st.ReadAt(ctx, p2[0]+100)
	assert.ErrorIs(t, err, ledger.ErrNoRecord)
}

func conflict(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	p, err := st.Append(ctx, []ledger.Record{first("a", "a1", 0)})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{first("a", "behind", 0)})
	require.ErrorIs(t, err, ledger.ErrConflict, "an expected version behind the account's")
	_, err = st.Append(ctx, []ledger.Record{first("a", "ahead", 4)})
	require.ErrorIs(t, err, ledger.ErrConflict, "an expected version ahead of the account's")
	recs := readAccount(t, st, "a", 0)
	assert.Equal(t, []string{"a1"}, tags(t, recs), "nothing stored")
	assert.Equal(t, uint64(1), accountVersion(t, st, "a"))
	p2, err := st.Append(ctx, []ledger.Record{first("a", "a2", 1)})
	require.NoError(t, err, "the right version is accepted after the refusals")
	assert.Greater(t, p2[0], p[0])
}

func atomicAcrossAccounts(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	_, err := st.Append(ctx, []ledger.Record{first("b", "b1", 0), first("c", "c1", 0)})
	require.NoError(t, err)
	// a is fresh (version 0, right) and c is at 1 (right); b's expected version is stale: none
	// of the three is stored.
	_, err = st.Append(ctx, []ledger.Record{first("a", "a1", 0), at("a", "a2", 2), first("b", "b2", 0), first("c", "c2", 1)})
	require.ErrorIs(t, err, ledger.ErrConflict)
	assert.Empty(t, readAccount(t, st, "a", 0), "the other accounts' records were not stored either")
	assert.Equal(t, []string{"c1"}, tags(t, readAccount(t, st, "c", 0)))
	assert.Zero(t, accountVersion(t, st, "a"))
	assert.Equal(t, uint64(1), accountVersion(t, st, "c"))
	// Decided again at the versions that hold, the same append lands whole.
	pos, err := st.Append(ctx, []ledger.Record{first("a", "a1", 0), at("a", "a2", 2), first("b", "b2", 1), first("c", "c2", 1)})
	require.NoError(t, err)
	require.Len(t, pos, 4)
	for _, id := range []string{"a", "b", "c"} {
		assert.Equal(t, uint64(2), accountVersion(t, st, id), id)
	}
}

func oneWinner(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	const racers = 8
	race := func(expect uint64) int {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for i := 0; i < racers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Append(ctx, []ledger.Record{first("hot", fmt.Sprintf("v%d-r%d", expect+1, i), expect)})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else {
					assert.True(t, errors.Is(err, ledger.ErrConflict), "a loser is told conflict: %v", err)
				}
			}()
		}
		wg.Wait()
		return wins
	}
	assert.Equal(t, 1, race(0), "racing to create the account")
	assert.Equal(t, 1, race(1), "racing on an account that exists")
	recs := readAccount(t, st, "hot", 0)
	assert.Len(t, recs, 2)
	assert.Equal(t, uint64(2), accountVersion(t, st, "hot"))
}

// ordering: positions follow the order of appends across accounts; one account's records are
// in version order at growing positions; a read from a version or a position is a suffix.
func ordering(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	version := map[string]uint64{}
	var all []uint64
	for i := range 6 {
		var recs []ledger.Record
		for _, id := range []string{"x", "y"}[:1+i%2] {
			recs = append(recs, first(id, fmt.Sprintf("%s%d", id, version[id]+1), version[id]), at(id, fmt.Sprintf("%s%d", id, version[id]+2), version[id]+2))
			version[id] += 2
		}
		pos, err := st.Append(ctx, recs)
		require.NoError(t, err)
		for j, p := range pos {
			if n := len(all); n > 0 {
				require.Greater(t, p, all[n-1], "append %d record %d", i, j)
			}
			all = append(all, p)
		}
	}
	x := readAccount(t, st, "x", 0)
	require.Len(t, x, int(version["x"]))
	for i, r := range x {
		assert.Equal(t, uint64(i+1), r.Version)
		if i > 0 {
			assert.Greater(t, r.Position, x[i-1].Position)
		}
	}
	from := readAccount(t, st, "x", 5)
	require.NotEmpty(t, from)
	assert.Equal(t, x[4:], from, "a read from version 5 is the account's suffix from 5")
	assert.Empty(t, readAccount(t, st, "x", version["x"]+1), "nothing beyond the last version")
	var suffix []uint64
	_, err := st.Read(ctx, all[3], func(r ledger.Record) error {
		suffix = append(suffix, r.Position)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, all[3:], suffix, "a read from a position is the total order's suffix")
}

func uncertain(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	for _, stored := range []bool{false, true} {
		st, provoke := newStore(t)
		if provoke == nil || !provoke(stored) {
			continue // this store cannot provoke that case
		}
		ctx := context.Background()
		_, err := st.Append(ctx, []ledger.Record{first("a", "a1", 0), first("b", "b1", 0)})
		require.ErrorIs(t, err, ledger.ErrUncertain)
		ra, rb := readAccount(t, st, "a", 0), readAccount(t, st, "b", 0)
		assert.Equal(t, len(ra), len(rb), "all or nothing")
		if stored {
			assert.Len(t, ra, 1, "stored, although the caller was not told")
		} else {
			assert.Empty(t, ra, "not stored")
		}
		// The caller re-reads and decides again: an append at the version it now reads is
		// accepted, and one at the version it held before the uncertain append is not when
		// that append landed.
		v := accountVersion(t, st, "a")
		if v > 0 {
			_, err = st.Append(ctx, []ledger.Record{first("a", "a-stale", 0)})
			require.ErrorIs(t, err, ledger.ErrConflict)
		}
		_, err = st.Append(ctx, []ledger.Record{first("a", "a-again", v)})
		require.NoError(t, err)
	}
}

func malformed(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	checkedSecond := at("a", "a2", 2)
	checkedSecond.CheckVersion, checkedSecond.ExpectedVersion = true, 1
	for name, recs := range map[string][]ledger.Record{
		"a version gap in one account":         {first("a", "a1", 0), at("a", "a3", 3)},
		"a check on an account's later record": {first("a", "a1", 0), checkedSecond},
		"a check whose version does not follow": {func() ledger.Record {
			r := first("a", "a1", 0)
			r.ExpectedVersion = 3
			return r
		}()},
		"a record without a version": {{AccountID: "a", Data: []byte(`{}`)}},
	} {
		_, err := st.Append(ctx, recs)
		require.ErrorIs(t, err, ledger.ErrMalformedAppend, name)
	}
	assert.Empty(t, readAccount(t, st, "a", 0), "nothing stored")
}
