package partition

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Liveness is what a probe learned of one node, over a path that does not go through the lease
// store (Config.Probe).
type Liveness int

const (
	// NodeUnknown: no answer in time, or an error. It proves nothing either way: a node that is
	// paused, or cut off while its server still holds its connection, answers so.
	NodeUnknown Liveness = iota
	// NodeUp: the node answered.
	NodeUp
	// NodeDown: proof that nothing answers for the node (NATS: no responders, the server knows
	// no subscription of it), such as a node killed whose connection the server has dropped.
	NodeDown
)

// String names the answer in logs.
func (l Liveness) String() string {
	switch l {
	case NodeUp:
		return "up"
	case NodeDown:
		return "down"
	}
	return "unknown"
}

// probeTimeout bounds one round of probes (they run at once, so also each probe): a node that
// does not answer within it counts as NodeUnknown, and the while goes on.
const probeTimeout = 500 * time.Millisecond

// maxProbing bounds the probes in flight at once; a member left waiting past probeTimeout counts
// as NodeUnknown.
const maxProbing = 8

// probe ends a running while early once every node that was a member before the gap is either a
// member again (seen) or proven down by Config.Probe: the partitions of a node that died with
// the lease bucket's leader are then taken at once instead of after settle. A node that is up
// or unknown keeps the while (it may yet take its partitions back). A Down counts only in a
// round where this node's probe of itself answered Up: proof that the probe path works here
// (the answering side is subscribed and allowed to be), so that a broken path, which would
// answer "no responders" for everyone, ends nothing. Called from the stepping goroutine only,
// after seen and before the acquisitions; it does nothing without a Probe or a while.
func (k *Keeper) probe(ctx context.Context, nodes []string) {
	c := &k.comeback
	if k.cfg.Probe == nil || c.until.IsZero() || !k.cfg.Now().Before(c.until) {
		return
	}
	ask := []string{k.cfg.Node}
	for _, m := range c.members {
		if m != k.cfg.Node && !contains(nodes, m) {
			ask = append(ask, m)
		}
	}
	if len(ask) == 1 {
		return // every member is seen again: seen ended the while
	}
	got := k.probeAll(ctx, ask)
	if got[0] != NodeUp {
		k.cfg.Log.Debug().Stringer("self", got[0]).Msg("this node's own liveness probe did not answer; the while after the gap goes on")
		return
	}
	down := map[string]bool{}
	for i, l := range got[1:] {
		if l == NodeDown {
			down[ask[i+1]] = true
		}
	}
	if len(down) == len(ask)-1 {
		k.cfg.Log.Info().Strs("down", ask[1:]).
			Msg("every member from before the lease-store gap is back or proven down; taking this node's share of the partitions again")
		c.end()
		return
	}
	k.freeShares(down)
}

// freeShares lets this node take, while the while goes on, the partitions that Assign gave to the
// members now proven down (among the members from before the gap), where Assign now gives them to
// it (comeback.assignees): a member that is up or unknown, seen again or not, keeps its share.
func (k *Keeper) freeShares(down map[string]bool) {
	c := &k.comeback
	if len(down) == 0 {
		c.down, c.freed = nil, nil
		return
	}
	changed := len(down) != len(c.down)
	for n := range down {
		changed = changed || !c.down[n]
	}
	c.down, c.freed = down, map[int]bool{}
	for p, owner := range Assign(k.cfg.Partitions, c.members) {
		if down[owner] {
			c.freed[p] = true
		}
	}
	if changed {
		names := make([]string, 0, len(down))
		for n := range down {
			names = append(names, n)
		}
		sort.Strings(names)
		k.cfg.Log.Info().Strs("down", names).Int("partitions", len(c.freed)).
			Msg("members from before the lease-store gap proven down; taking this node's share of their partitions while the others come back")
	}
}

// probeAll asks Config.Probe about every node at once (at most maxProbing in flight), all
// within probeTimeout; got[i] answers for nodes[i].
func (k *Keeper) probeAll(ctx context.Context, nodes []string) []Liveness {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var (
		got = make([]Liveness, len(nodes))
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxProbing)
	)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return // NodeUnknown
			}
			defer func() { <-sem }()
			l, err := k.cfg.Probe(ctx, n)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err() // an answer past the bound counts for nothing
			}
			if err != nil {
				k.cfg.Log.Debug().Err(err).Str("node", n).Msg("liveness probe")
				l = NodeUnknown
			}
			got[i] = l
		}()
	}
	wg.Wait()
	return got
}

// probeGone finds, at a step outside a while after a gap, the members proven down although their
// heartbeats have not lapsed yet (a node killed a moment ago: its server dropped its
// subscriptions when its connection closed, a fraction of a second after the kill, while its
// heartbeat key lives for the TTL). They leave the assignment, and their leases are seized
// (seize.go) rather than waited out, once their keys have not moved for two ticks: the first
// accepted command on a killed node's partition no longer waits for its leases to lapse. As in a
// while, a Down counts only in a round where this node's probe of itself answered Up. A member
// wrongly proven down (its server's routes closed, or one reconnecting) that goes on renewing
// keeps its leases; one that also misses its renewals loses its partitions to the fence and gets
// them back on a later step: churn, never two writers nor two owners. Called from the stepping
// goroutine only.
func (k *Keeper) probeGone(ctx context.Context, nodes []string) {
	if k.cfg.Probe == nil || !k.comeback.until.IsZero() {
		k.gone = nil
		return
	}
	ask := []string{k.cfg.Node}
	for _, n := range nodes {
		if n != k.cfg.Node {
			ask = append(ask, n)
		}
	}
	if len(ask) == 1 {
		k.gone = nil
		return
	}
	got := k.probeAll(ctx, ask)
	gone := map[string]bool{}
	if got[0] == NodeUp {
		for i, l := range got[1:] {
			if l == NodeDown {
				gone[ask[i+1]] = true
			}
		}
	}
	for n := range gone {
		if !k.gone[n] {
			k.cfg.Log.Info().Str("node", n).Msg("member proven down before its heartbeat lapsed; taking its partitions once its leases stop moving, without waiting for them to lapse")
		}
	}
	if len(gone) == 0 {
		gone = nil
	}
	k.gone = gone
}

// seizable are the nodes whose leases acquire may seize: the members proven down, in a while
// after a gap (comeback.down) or outside one (gone).
func (k *Keeper) seizable() []string {
	var out []string
	for n := range k.gone {
		out = append(out, n)
	}
	for n := range k.comeback.down {
		if !k.gone[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// without is nodes less those in drop.
func without(nodes []string, drop map[string]bool) []string {
	if len(drop) == 0 {
		return nodes
	}
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if !drop[n] {
			out = append(out, n)
		}
	}
	return out
}
