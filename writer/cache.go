package writer

import (
	"fmt"
	"strings"

	"github.com/creditledger/creditledger/events"
)

// accountCache is the writer's copy of the accounts of the partitions it holds, and what it knows
// of the globally unique ids held anywhere: which partitions it loaded and which of them it has
// dropped since, the accounts being re-read or brought up to date, and the ids' holders. It
// makes no store call; only the writer goroutine (or Load, before Run) reads and changes it.
type accountCache struct {
	// accounts are the accounts of the held partitions (and, for one subscription move, a copy of
	// another node's account marked foreign).
	accounts map[string]*account
	// owners maps a unique id (createdIDs, subscriptionKey) to the account holding it, in any
	// partition as of the load; foreignSubs maps a subscription to the account of another
	// partition that held it at load (a hint for a store from before subscription claims).
	owners      map[string]string
	foreignSubs map[string]string
	// advancing holds accounts with an AdvanceTime request in flight.
	advancing map[string]bool
	// loads are the re-reads of stale accounts in flight beside the loop (beside.go).
	loads map[string]*accountLoad
	// suspects are accounts restored from a snapshot whose next stored event did not continue
	// them (another node appended to them below the snapshot's head): Load re-reads them.
	suspects []string
	// count is the store's partition count (0: none known); held says which partitions the
	// writer loaded (nil: every one), dropped those whose accounts Forget dropped since.
	count   int
	held    []bool
	dropped map[int]bool
}

// newAccountCache returns an empty cache of the partitions p says the writer holds.
func newAccountCache(p Partitions) (accountCache, error) {
	c := accountCache{
		accounts: map[string]*account{}, owners: map[string]string{}, foreignSubs: map[string]string{},
		advancing: map[string]bool{}, loads: map[string]*accountLoad{}, dropped: map[int]bool{},
		count: max(p.Count, 0),
	}
	if p.Count > 0 && p.Held != nil {
		c.held = make([]bool, p.Count)
		for _, h := range p.Held {
			if h < 0 || h >= p.Count {
				return accountCache{}, fmt.Errorf("writer: partition %d out of range [0, %d)", h, p.Count)
			}
			c.held[h] = true
		}
	}
	return c, nil
}

// reset empties the accounts, the suspects among them, and what is known of ids' holders (a
// snapshot is installed, or the stream is replayed from the start); n sizes the accounts' map.
func (c *accountCache) reset(n int) {
	c.accounts, c.owners, c.foreignSubs = make(map[string]*account, n), map[string]string{}, map[string]string{}
	c.suspects = nil
}

// holdsPartition reports whether the writer loaded partition p.
func (c *accountCache) holdsPartition(p int) bool {
	return c.held == nil || (p >= 0 && p < len(c.held) && c.held[p])
}

// holdsAll reports whether the writer loaded every partition.
func (c *accountCache) holdsAll() bool { return c.held == nil }

// holdsNone reports whether the writer loaded no partition at all.
func (c *accountCache) holdsNone() bool {
	if c.held == nil {
		return false
	}
	for _, h := range c.held {
		if h {
			return false
		}
	}
	return true
}

// isDropped reports whether Forget dropped partition p's accounts: it is never snapshotted again.
func (c *accountCache) isDropped(p int) bool { return c.dropped[p] }

// keeps reports whether partition p (of a known count) is loaded and not dropped since.
func (c *accountCache) keeps(p int) bool {
	return c.count > 0 && c.holdsPartition(p) && !c.dropped[p]
}

// forget drops the accounts of the partitions gone and marks those dropped; the ids those
// accounts hold stay noted as another partition's. It returns how many accounts it dropped.
func (c *accountCache) forget(gone map[int]bool) int {
	for p := range gone {
		c.dropped[p] = true
	}
	n := 0
	for id, a := range c.accounts {
		if gone[partitionOf(id, c.count)] {
			c.ownAll(id, a)
			delete(c.accounts, id)
			n++
		}
	}
	return n
}

// hasStale reports whether an account is stale (a failed or uncertain append).
func (c *accountCache) hasStale() bool {
	for _, a := range c.accounts {
		if a.stale {
			return true
		}
	}
	return false
}

// dropForeign forgets an account read only for a move.
func (c *accountCache) dropForeign(accountID string) {
	if a, ok := c.accounts[accountID]; ok && a.foreign {
		delete(c.accounts, accountID)
	}
}

// advance marks account id's AdvanceTime request in flight, until advanced.
func (c *accountCache) advance(id string) { c.advancing[id] = true }

// advanced ends what advance marked.
func (c *accountCache) advanced(id string) { delete(c.advancing, id) }

// isAdvancing reports whether account id has an AdvanceTime request in flight.
func (c *accountCache) isAdvancing(id string) bool { return c.advancing[id] }

// loading returns the re-read of account id in flight (nil: none).
func (c *accountCache) loading(id string) *accountLoad { return c.loads[id] }

// startLoad records a re-read of account id in flight and returns it.
func (c *accountCache) startLoad(id string) *accountLoad {
	l := &accountLoad{}
	c.loads[id] = l
	return l
}

// loaded ends the re-read of account id.
func (c *accountCache) loaded(id string) { delete(c.loads, id) }

// rereading reports whether any re-read is in flight.
func (c *accountCache) rereading() bool { return len(c.loads) > 0 }

// suspect notes an account restored from a snapshot that a stored event did not continue.
func (c *accountCache) suspect(id string) { c.suspects = append(c.suspects, id) }

// takeSuspects returns the accounts suspect notes, and forgets them.
func (c *accountCache) takeSuspects() []string {
	s := c.suspects
	c.suspects = nil
	return s
}

// own records which account holds the globally unique ids an event creates.
func (c *accountCache) own(accountID string, p events.Payload) {
	for _, id := range createdIDs(p) {
		c.owners[id] = accountID
	}
	c.ownSubscription(accountID, p) // subscriptions move between accounts
}

// ownAll records account id as the holder of every unique id its state holds.
func (c *accountCache) ownAll(id string, a *account) {
	for _, oid := range ownedIDs(a.state) {
		c.owners[oid] = id
	}
}

// ownSubscription keeps owners in step with a subscription event just folded into accountID's
// state. The owner is whichever account's state holds the subscription: a current owner that
// still holds it stays (so re-reading one account's old history never steals it), otherwise the
// account itself or, for a move, the account it moved to.
func (c *accountCache) ownSubscription(accountID string, p events.Payload) {
	var sub, other string
	switch e := p.(type) {
	case events.SubscriptionLinked:
		sub, other = e.SubscriptionID, e.PreviousAccountID
	case events.SubscriptionUnlinked:
		sub, other = e.SubscriptionID, e.MovedToAccountID
	default:
		return
	}
	holds := func(id string) bool {
		a := c.accounts[id]
		return id != "" && a != nil && a.state.Subscription.ID == sub
	}
	key := subscriptionKey(sub)
	if holds(c.owners[key]) {
		return
	}
	for _, id := range []string{accountID, other} {
		if holds(id) {
			c.owners[key] = id
			return
		}
	}
	delete(c.owners, key)
}

// noteForeignSubscription follows, at load, which account of another partition holds each
// subscription (only as a hint: see claimedHolder).
func (c *accountCache) noteForeignSubscription(accountID string, p events.Payload) {
	switch e := p.(type) {
	case events.SubscriptionLinked:
		c.foreignSubs[e.SubscriptionID] = accountID
	case events.SubscriptionUnlinked:
		if c.foreignSubs[e.SubscriptionID] == accountID {
			delete(c.foreignSubs, e.SubscriptionID)
		}
	}
}

// noteIDs records the holders of ids held in partitions this writer does not hold.
func (c *accountCache) noteIDs(pairs [][2]string) {
	for _, kv := range pairs {
		if sub, ok := strings.CutPrefix(kv[0], "subscription:"); ok {
			c.foreignSubs[sub] = kv[1]
			continue
		}
		c.owners[kv[0]] = kv[1]
	}
}
