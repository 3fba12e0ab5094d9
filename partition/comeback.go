package partition

import "time"

// comeback keeps a node from taking other nodes' partitions right after a gap in its own
// heartbeats (the lease store could not be reached: its stream leader died, and the election
// took about as long as the TTL). Every node's leases may have lapsed meanwhile, and the member
// list no longer shows the nodes whose heartbeats it did not see: the first node to step would
// take every free partition, the other nodes' too, and each of those would be fenced and loaded
// twice (there and back). So, for a while after such a gap (settle), a node takes back only the
// partitions it held before it; the other nodes take theirs back meanwhile, and the partitions
// of a node that died during the gap are taken once the while is over. The while ends early
// once every node that was a member before the gap is a member again: the assignment is then
// what it was before, and a free partition it gives this node is this node's to take. A member
// proven down by the liveness probe (liveness.go) frees its share before that: it leaves the
// assignment, and what Assign then gives this node of its partitions is taken at once. With a
// Config.Probe it also ends once each of those not seen again is proven down (liveness.go): a
// dead node takes nothing back, so waiting for it gains nothing. The while guards against churn
// (a partition fenced and loaded twice), not against two writers: the create-only lease and the
// partition fence do that whenever the while ends.
type comeback struct {
	// last is when the last heartbeat that succeeded was sent, and held what this node held at
	// the end of the last step that succeeded (a renewal during the gap may have found some of
	// those leases lapsed already).
	last time.Time
	held []int
	// members are the nodes of the last step that reached the store before the gap.
	members []string
	// failed is set when a heartbeat fails, until one succeeds again.
	failed bool
	// until ends the while (zero: none); before lists the partitions held when the gap began.
	until  time.Time
	before map[int]bool
	// down are the members the last round of probes proved down (liveness.go), and freed the
	// partitions Assign gave them among the members from before the gap: this node may take
	// those of them Assign now gives it, while the while goes on for the rest.
	down  map[string]bool
	freed map[int]bool
}

// settle is how long a node takes back only its own partitions after a gap: long enough for
// every live node to step once with the store back (a step that was waiting on the store ends
// within the TTL, which bounds it, and the next one starts within a tick). It is also how much
// later a node that died with the lease bucket's leader has its partitions taken over: kill -9
// takeovers of 10.9-16.8 s on the 2-core machine against 5.8-10.9 s without a gap
// (docs/bench/takeover.sh). Three ticks were tried: a slower live node then had partitions
// taken and handed back (TestLeaseBucketLeaderLossKeepsPartitions: 4 loads, in CI).
func (k *Keeper) settle() time.Duration { return k.ttl + 2*k.cfg.Tick }

// beat notes a heartbeat sent at sent, and its error. The first success after failures that
// lasted more than half the TTL (leases may have lapsed: the store was away, not merely slow to
// step) starts a while in which only the partitions held before are taken. Called from the
// stepping goroutine only, before the renewals (which may drop lapsed leases).
func (k *Keeper) beat(sent time.Time, err error) {
	c := &k.comeback
	if err != nil {
		c.failed = true
		return
	}
	gap := sent.Sub(c.last)
	if c.failed && !c.last.IsZero() && gap > k.ttl/2 {
		if !sent.Before(c.until) {
			c.before = map[int]bool{} // a while still running keeps what it had
		}
		for _, p := range c.held {
			c.before[p] = true
		}
		for _, p := range k.all() {
			c.before[p] = true
		}
		c.until = sent.Add(k.settle())
		k.cfg.Log.Info().Dur("gap", gap).Int("held", len(c.before)).Dur("for", k.settle()).
			Msg("lease store reachable again after a gap; taking back only this node's partitions for a while")
	}
	c.last, c.failed = sent, false
}

// stepped notes what this node holds at the end of a step that reached the store, and the
// members it saw (kept as they were before the gap while a while runs).
func (k *Keeper) stepped(nodes []string) {
	c := &k.comeback
	c.held = k.all()
	if c.until.IsZero() {
		c.members = nodes
	}
}

// seen ends a running while once every node that was a member before the gap is one again.
func (c *comeback) seen(nodes []string) {
	if c.until.IsZero() {
		return
	}
	for _, m := range c.members {
		if !contains(nodes, m) {
			return
		}
	}
	c.end()
}

// end ends the while.
func (c *comeback) end() { c.until, c.before, c.down, c.freed = time.Time{}, nil, nil, nil }

// assignees are the nodes Assign spreads the partitions over: nodes, the member list, except
// while a while runs and some members were proven down. Then they are the members from before the
// gap and since, less those proven down and not seen again: a live member that the member list
// does not show yet (its watch recovers after the bucket's election, seconds after the store
// answers again) keeps its share, and the shares of the dead ones go where Assign puts them.
func (c *comeback) assignees(nodes []string, now time.Time) []string {
	if c.until.IsZero() || !now.Before(c.until) || len(c.down) == 0 {
		return nodes
	}
	out := append([]string(nil), nodes...)
	for _, m := range c.members {
		if !contains(out, m) && !c.down[m] {
			out = append(out, m)
		}
	}
	return out
}

// waits reports whether partition p must wait before this node acquires it: a while after a gap
// is running and p was not this node's before it.
func (c *comeback) waits(p int, now time.Time) bool {
	if c.until.IsZero() {
		return false
	}
	if !now.Before(c.until) {
		c.end()
		return false
	}
	return !c.before[p] && !c.freed[p]
}
