package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// nearReads checks ReadNear, for a store that has it, on a store whose replicas have settled: the
// events Read passes from each position (ownership records passed over), in the same order, and
// every position up to the one it returns, which is the head once from is at or below it.
func nearReads(t *testing.T, newStore func(*testing.T) (ledger.Store, Uncertain)) {
	st, _ := newStore(t)
	nr, ok := st.(ledger.NearReader)
	if !ok {
		t.Skip("the store reads only from its leader")
	}
	ctx := context.Background()
	n := partitionCount(st)
	a, b := inPartition(t, "a", 1, n), inPartition(t, "b", 2, n)
	mustAppend := func(recs ...ledger.Record) {
		_, err := st.Append(ctx, recs)
		require.NoError(t, err)
	}
	mustAppend(first(a, "a1", 0), first(b, "b1", 0))
	_, err := st.Fence(ctx, []ledger.FenceClaim{claim(1, "node-a", 1, 0)})
	require.NoError(t, err)
	mustAppend(at(a, "a2", 2))
	mustAppend(at(b, "b2", 2))
	head, err := st.Read(ctx, 1, func(ledger.Record) error { return nil })
	require.NoError(t, err)
	for from := uint64(0); from <= head+1; from++ {
		var want, got []ledger.Record
		_, err := st.Read(ctx, from, func(r ledger.Record) error { want = append(want, r); return nil })
		require.NoError(t, err)
		last, err := nr.ReadNear(ctx, from, func(r ledger.Record) error { got = append(got, r); return nil })
		require.NoError(t, err, "from %d", from)
		assert.Equal(t, tags(t, want), tags(t, got), "from %d", from)
		for i := range want {
			assert.Equal(t, want[i].Position, got[i].Position, "from %d", from)
			assert.Equal(t, want[i].AccountID, got[i].AccountID, "from %d", from)
		}
		if from <= head {
			assert.Equal(t, head, last, "from %d", from)
		}
	}
}
