package writer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// idClaims is an IDClaims in memory shared by the writers of a test; it counts the claims.
type idClaims struct {
	mu      sync.Mutex
	holders map[string]string
	asked   int
}

func (c *idClaims) Claim(_ context.Context, id, account string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	if c.holders == nil {
		c.holders = map[string]string{}
	}
	if h, ok := c.holders[id]; ok {
		return h, nil
	}
	c.holders[id] = account
	return account, nil
}

func (c *idClaims) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked
}

// partitionAfterPartition is a store read apart that hands the partitions over one after another,
// the last first (as the JetStream store may: ledger.PartitionReader), not in position order.
type partitionAfterPartition struct{ *memstore.Store }

func (s partitionAfterPartition) ReadPartitions(ctx context.Context, from uint64, n int, ps []int, fn func(ledger.Record) error) (uint64, error) {
	var head uint64
	for i := len(ps) - 1; i >= 0; i-- {
		h, err := s.Store.ReadPartitions(ctx, from, n, ps[i:i+1], fn)
		if err != nil {
			return 0, err
		}
		head = max(head, h)
	}
	return head, nil
}

// recordsOf counts the store's records of the given partitions (of testParts) from position from on.
func recordsOf(t *testing.T, st ledger.Store, from uint64, parts ...int) int {
	return recordsAmong(t, st, testParts, from, parts...)
}

// recordsAmong counts the store's records of the given partitions of n from position from on.
func recordsAmong(t *testing.T, st ledger.Store, n int, from uint64, parts ...int) int {
	keep := map[int]bool{}
	for _, p := range parts {
		keep[p] = true
	}
	count := 0
	_, err := st.Read(context.Background(), from, func(r ledger.Record) error {
		if keep[ledger.PartitionOf(r.AccountID, n)] {
			count++
		}
		return nil
	})
	require.NoError(t, err)
	return count
}

// Over a store that keeps partitions apart, a writer that takes partitions over reads only their
// records after their snapshots (not every record after the oldest snapshot of any partition),
// one partition after another, reaches the same state as a full replay, and still refuses an id held in a partition it did
// not read: the shared claims know it, since every writer claims the ids it creates there.
func TestLoadReadsOnlyHeldPartitionsOfAStoreReadApart(t *testing.T) {
	t.Parallel()
	mem, snaps, claims := memstore.New(), &snapStore{}, &idClaims{}
	mem.KeepPartitionsApart()
	st := partitionAfterPartition{mem}
	withClaims := func(o *writer.Options) { o.Claims = claims }
	a0, a1, a2 := accountsIn(0, 1, "ra")[0], accountsIn(1, 2, "ra"), accountsIn(2, 2, "ra")
	a3 := accountsIn(3, 1, "ra")[0]
	w1, _ := partWriterWith(t, st, snaps, withClaims, 0, 1)
	stop1 := run(t, w1)
	w2, _ := partWriterWith(t, st, snaps, withClaims, 2, 3)
	stop2 := run(t, w2)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c-a0", a0, "L-zero")).Err)
	require.Nil(t, send(t, w1, "purchase_license", buyL("c-a1", a1[0], "L-one")).Err)
	require.Nil(t, send(t, w2, "purchase_license", buyL("c-a2", a2[0], "L-two")).Err)
	stop1()
	stop2()
	snapHead := w1.Head()
	// After the snapshots: events of every partition, the loaded ones' and the others'.
	for i, acct := range []string{a1[1], a0, a2[1], a3, a3} {
		w, _ := partWriterWith(t, st, nil, withClaims, ledger.PartitionOf(acct, testParts))
		stop := run(t, w)
		require.Nil(t, send(t, w, "purchase_license", buyL(fmt.Sprintf("late-%d", i), acct, fmt.Sprintf("L-late-%d", i))).Err)
		stop()
	}

	w3, line := partWriterWith(t, st, snaps, withClaims, 1, 2)
	replay, _ := partWriter(t, st, nil, 1, 2)
	assert.Equal(t, statesOf(replay, 1, 2), states(w3), "snapshots plus the partitions' tail equal a full replay")
	assert.Equal(t, snapHead+1, line.From)
	assert.Equal(t, recordsOf(t, st, snapHead+1, 1, 2), line.RecordsRead, "only partitions 1 and 2 are read")
	assert.Less(t, line.RecordsRead, int(w3.Head()-snapHead), "the other partitions' records are not read")

	stop3 := run(t, w3)
	defer stop3()
	taken := send(t, w3, "purchase_license", buyL("steal", a1[1], "L-zero"))
	require.NotNil(t, taken.Err, "a license held in partition 0 (neither read nor in a list) is refused")
	assert.Equal(t, ledger.CodeAlreadyExists, taken.Err.Code)
}

// A writer that owns every partition claims the ids it creates when the store keeps partitions
// apart (a node taking partitions over later reads only theirs), and spares the round trip when
// the store is read whole (the owner index knows every id).
func TestOwningEverythingClaimsOnlyOverAStoreReadApart(t *testing.T) {
	t.Parallel()
	for _, apart := range []bool{true, false} {
		t.Run(fmt.Sprintf("apart=%v", apart), func(t *testing.T) {
			st, claims, o := memstore.New(), &idClaims{}, &everything{}
			if apart {
				st.KeepPartitionsApart()
			}
			o.all.Store(true)
			w := memWriter(t, st, writer.Options{Owner: o, Claims: claims})
			stop := run(t, w)
			defer stop()
			require.Nil(t, send(t, w, "purchase_license", buyL("c1", "acme", "L1")).Err)
			if apart {
				assert.Equal(t, 1, claims.count(), "the license id is claimed")
			} else {
				assert.Zero(t, claims.count(), "no claim: the owner index knows every id")
			}
		})
	}
}

// Over the JetStream store (partitioned subjects, 64 partitions), a writer that loads two of the
// partitions reads only their events (direct gets on ledger.events.<p>.*) and holds what a full
// replay of them holds.
func TestLoadOfFewPartitionsOverJetStream(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	n := r.store.Partitions()
	require.True(t, r.store.PartitionsApart())
	all, stop := r.start(t, nil, 0)
	var accts []string
	for i := range 40 {
		acct := fmt.Sprintf("jr-%d", i)
		accts = append(accts, acct)
		require.Nil(t, send(t, all, "purchase_license", buyL("c-"+acct, acct, "L-"+acct)).Err)
	}
	stop()
	p1, p2 := ledger.PartitionOf(accts[0], n), ledger.PartitionOf(accts[1], n)
	w, line := partWriterOf(t, r.store, nil, n, nil, p1, p2)
	inHeld := 0
	for _, acct := range accts {
		if p := ledger.PartitionOf(acct, n); p == p1 || p == p2 {
			inHeld++
		}
	}
	assert.Len(t, states(w), inHeld, "the accounts of the two partitions")
	whole := struct{ ledger.Store }{r.store} // the same store, read only whole
	full, _ := partWriterOf(t, whole, nil, n, nil, p1, p2)
	assert.Equal(t, states(full), states(w))
	assert.Equal(t, recordsAmong(t, r.store, n, 1, p1, p2), line.RecordsRead, "only the two partitions' events are read")
	assert.Less(t, line.RecordsRead, 40)
	assert.Equal(t, all.Head(), w.Head(), "the head is the stream's")
}
