// Package storetest is the ledger.Store contract as a test suite: every store (the JetStream
// store, the in-memory store) must pass Run. It defines what "a store" means to the writer:
// per-account optimistic concurrency, all-or-nothing appends across accounts, one total order,
// and what an append whose outcome is unknown may have done.
package storetest

import (
	"context"
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
	t.Run("a stale head is refused and nothing is stored", func(t *testing.T) { conflict(t, newStore) })
	t.Run("an append across accounts is all or nothing", func(t *testing.T) { atomicAcrossAccounts(t, newStore) })
	t.Run("of two racing appends at one head exactly one wins", func(t *testing.T) { oneWinner(t, newStore) })
	t.Run("an uncertain append stored all or nothing", func(t *testing.T) { uncertain(t, newStore) })
	runFences(t, newStore)
}

func rec(account, data string, checkHead bool, head uint64) ledger.Record {
	return ledger.Record{AccountID: account, Data: []byte(data), CheckHead: checkHead, Head: head}
}

func appendAndRead(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	p1, err := st.Append(ctx, []ledger.Record{rec("a", "a1", true, 0), rec("a", "a2", false, 0)})
	require.NoError(t, err)
	require.Len(t, p1, 2)
	assert.Equal(t, p1[0]+1, p1[1], "one append's records are consecutive")
	p2, err := st.Append(ctx, []ledger.Record{rec("b", "b1", true, 0)})
	require.NoError(t, err)
	assert.Greater(t, p2[0], p1[1], "positions grow")
	head, err := st.AccountHead(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, p1[1], head)
	var order []string
	last, err := st.Read(ctx, 1, func(r ledger.Record) error {
		order = append(order, string(r.Data))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a1", "a2", "b1"}, order)
	assert.Equal(t, p2[0], last)
	recs, err := st.ReadAccount(ctx, "a")
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, "a2", string(recs[1].Data))
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
	p, err := st.Append(ctx, []ledger.Record{rec("a", "a1", true, 0)})
	require.NoError(t, err)
	_, err = st.Append(ctx, []ledger.Record{rec("a", "stale", true, 0)})
	require.ErrorIs(t, err, ledger.ErrConflict)
	head, err := st.AccountHead(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, p[0], head, "nothing stored")
	_, err = st.Append(ctx, []ledger.Record{rec("a", "a2", true, p[0])})
	require.NoError(t, err, "the right head is accepted")
}

func atomicAcrossAccounts(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	_, err := st.Append(ctx, []ledger.Record{rec("b", "b1", true, 0)})
	require.NoError(t, err)
	// a is fresh (head 0, right); b's expected head is stale: neither is stored.
	_, err = st.Append(ctx, []ledger.Record{rec("a", "a1", true, 0), rec("b", "b2", true, 0)})
	require.ErrorIs(t, err, ledger.ErrConflict)
	recs, err := st.ReadAccount(ctx, "a")
	require.NoError(t, err)
	assert.Empty(t, recs, "the other account's records were not stored either")
}

func oneWinner(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	ctx := context.Background()
	const racers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Append(ctx, []ledger.Record{rec("hot", fmt.Sprintf("r%d", i), true, 0)})
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
	assert.Equal(t, 1, wins)
	recs, err := st.ReadAccount(ctx, "hot")
	require.NoError(t, err)
	assert.Len(t, recs, 1)
}

func uncertain(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	for _, stored := range []bool{false, true} {
		st, provoke := newStore(t)
		if provoke == nil || !provoke(stored) {
			continue // this store cannot provoke that case
		}
		ctx := context.Background()
		_, err := st.Append(ctx, []ledger.Record{rec("a", "a1", true, 0), rec("b", "b1", true, 0)})
		require.ErrorIs(t, err, ledger.ErrUncertain)
		ra, err := st.ReadAccount(ctx, "a")
		require.NoError(t, err)
		rb, err := st.ReadAccount(ctx, "b")
		require.NoError(t, err)
		assert.Equal(t, len(ra), len(rb), "all or nothing")
		// The caller re-reads and decides again: a retry at the head it now reads is accepted.
		head, err := st.AccountHead(ctx, "a")
		require.NoError(t, err)
		_, err = st.Append(ctx, []ledger.Record{rec("a", "a-again", true, head)})
		require.NoError(t, err)
	}
}
