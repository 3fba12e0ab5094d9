package writer

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// TestAccountCachePartitions: which partitions a cache holds, keeps (held and not dropped) and
// snapshots; a held partition out of range is refused.
func TestAccountCachePartitions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                string
		parts               Partitions
		holds, keeps        []bool // of partitions 0..3
		holdsAll, holdsNone bool
	}{
		{"no count: every account", Partitions{}, []bool{true, true, true, true}, []bool{false, false, false, false}, true, false},
		{"every partition", Partitions{Count: 4}, []bool{true, true, true, true}, []bool{true, true, true, true}, true, false},
		{"some", Partitions{Count: 4, Held: []int{1, 3}}, []bool{false, true, false, true}, []bool{false, true, false, true}, false, false},
		{"none", Partitions{Count: 4, Held: []int{}}, []bool{false, false, false, false}, []bool{false, false, false, false}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ac, err := newAccountCache(c.parts)
			require.NoError(t, err)
			for p := range 4 {
				assert.Equal(t, c.holds[p], ac.holdsPartition(p), "holds %d", p)
				assert.Equal(t, c.keeps[p], ac.keeps(p), "keeps %d", p)
			}
			assert.Equal(t, c.holdsAll, ac.holdsAll())
			assert.Equal(t, c.holdsNone, ac.holdsNone())
			assert.Equal(t, c.holdsAll, ac.holdsPartition(-1), "out of range: held only when every one is")
		})
	}
	_, err := newAccountCache(Partitions{Count: 4, Held: []int{4}})
	assert.ErrorContains(t, err, "partition 4 out of range")
}

// TestAccountCacheForget: forgetting partitions drops exactly their accounts, marks them dropped
// (not kept, so never snapshotted again), and leaves the ids those accounts held noted as theirs.
func TestAccountCacheForget(t *testing.T) {
	t.Parallel()
	const count = 4
	ac, err := newAccountCache(Partitions{Count: count, Held: []int{0, 1, 2}})
	require.NoError(t, err)
	byPart := map[int][]string{}
	for i := 0; i < 1000 && (len(byPart[0]) < 3 || len(byPart[1]) < 3 || len(byPart[2]) < 3); i++ {
		id := fmt.Sprintf("acct-%d", i)
		p := ledger.PartitionOf(id, count)
		if p == 3 || len(byPart[p]) == 3 {
			continue
		}
		byPart[p] = append(byPart[p], id)
		a := ledger.NewAccount(id).WithMaps()
		a.Licenses["L-"+id] = ledger.License{ID: "L-" + id}
		ac.accounts[id] = &account{state: a}
		ac.own(id, events.LicensePurchased{LicenseID: "L-" + id})
	}
	require.Len(t, ac.accounts, 9)

	assert.Equal(t, 6, ac.forget(map[int]bool{0: true, 2: true}))
	for p, ids := range byPart {
		gone := p != 1
		assert.Equal(t, gone, ac.isDropped(p), "partition %d dropped", p)
		assert.Equal(t, !gone, ac.keeps(p), "partition %d kept", p)
		for _, id := range ids {
			_, held := ac.accounts[id]
			assert.Equal(t, !gone, held, "account %s of partition %d", id, p)
			assert.Equal(t, id, ac.owners["license:L-"+id], "its license stays noted as its own")
		}
	}
	assert.Equal(t, 0, ac.forget(map[int]bool{3: true}), "a partition with no account")
	assert.True(t, ac.isDropped(3))
}

// TestAccountCacheOwners: ids are owned by the account whose events create them; a subscription
// by whichever account's state holds it (a move hands it over, re-reading old history does not
// take it back); ids noted from another partition go to owners or, for subscriptions, to
// foreignSubs.
func TestAccountCacheOwners(t *testing.T) {
	t.Parallel()
	ac, err := newAccountCache(Partitions{})
	require.NoError(t, err)
	withSub := func(id, sub string) {
		a := ledger.NewAccount(id)
		a.Subscription = ledger.Subscription{ID: sub}
		ac.accounts[id] = &account{state: a}
	}
	key := subscriptionKey("S")

	ac.own("a", events.PaygContractPurchased{ContractID: "P-1"})
	assert.Equal(t, "a", ac.owners["payg:P-1"])

	withSub("a", "S")
	ac.own("a", events.SubscriptionLinked{SubscriptionID: "S"})
	assert.Equal(t, "a", ac.owners[key])

	withSub("b", "S") // a's copy still holds it: re-reading b's old link does not take it
	ac.own("b", events.SubscriptionLinked{SubscriptionID: "S"})
	assert.Equal(t, "a", ac.owners[key])

	withSub("a", "") // moved from a to b
	ac.own("a", events.SubscriptionUnlinked{SubscriptionID: "S", MovedToAccountID: "b"})
	assert.Equal(t, "b", ac.owners[key])

	withSub("b", "") // b unlinked it: nobody holds it
	ac.own("b", events.SubscriptionUnlinked{SubscriptionID: "S"})
	assert.NotContains(t, ac.owners, key)

	ac.noteIDs([][2]string{{"license:L-9", "x"}, {"subscription:T", "y"}})
	assert.Equal(t, "x", ac.owners["license:L-9"])
	assert.Equal(t, "y", ac.foreignSubs["T"])
	ac.noteForeignSubscription("z", events.SubscriptionUnlinked{SubscriptionID: "T"})
	assert.Equal(t, "y", ac.foreignSubs["T"], "another account's unlink leaves the hint")
	ac.noteForeignSubscription("y", events.SubscriptionUnlinked{SubscriptionID: "T"})
	assert.NotContains(t, ac.foreignSubs, "T")

	ac.suspect("a")
	ac.reset(0)
	assert.Empty(t, ac.accounts)
	assert.Empty(t, ac.owners)
	assert.Empty(t, ac.foreignSubs)
	assert.Empty(t, ac.takeSuspects())
}

// TestAccountCacheInFlight: re-reads, AdvanceTime requests, suspects and foreign copies are marked
// and ended one account at a time.
func TestAccountCacheInFlight(t *testing.T) {
	t.Parallel()
	ac, err := newAccountCache(Partitions{})
	require.NoError(t, err)

	assert.False(t, ac.rereading())
	l := ac.startLoad("a")
	assert.Same(t, l, ac.loading("a"))
	assert.Nil(t, ac.loading("b"))
	assert.True(t, ac.rereading())
	ac.loaded("a")
	assert.Nil(t, ac.loading("a"))
	assert.False(t, ac.rereading())

	ac.advance("a")
	assert.True(t, ac.isAdvancing("a"))
	assert.False(t, ac.isAdvancing("b"))
	ac.advanced("a")
	assert.False(t, ac.isAdvancing("a"))

	ac.suspect("a")
	ac.suspect("b")
	assert.Equal(t, []string{"a", "b"}, ac.takeSuspects())
	assert.Empty(t, ac.takeSuspects(), "taken once")

	ac.accounts["mine"] = &account{state: ledger.NewAccount("mine"), stale: true}
	ac.accounts["theirs"] = &account{state: ledger.NewAccount("theirs"), foreign: true}
	assert.True(t, ac.hasStale())
	ac.dropForeign("mine")
	ac.dropForeign("theirs")
	assert.Contains(t, ac.accounts, "mine", "only a foreign copy is dropped")
	assert.NotContains(t, ac.accounts, "theirs")
	ac.accounts["mine"].stale = false
	assert.False(t, ac.hasStale())
}
