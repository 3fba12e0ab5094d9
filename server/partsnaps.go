package server

import "sort"

// Partition snapshots at a hand-over (writer/partsnap.go): kept apart from partitions.go.

// handingOver lists the partitions whose snapshot g saves as it drains for p: p itself, or every
// partition on a graceful stop; only those g loaded in the tenure the node still holds (a
// partition re-acquired since g loaded it may have been written by another node meanwhile).
func (n *node) handingOver(g *generation, p int) []int {
	ps := []int{p}
	if n.stopping.Load() {
		ps = ps[:0]
		for q := range g.tenure {
			ps = append(ps, q)
		}
	}
	out := ps[:0:0]
	for _, q := range ps {
		if t, ok := n.keeper.Tenure(q); ok {
			if have, loaded := g.tenureOf(q); loaded && have == t {
				out = append(out, q)
			}
		}
	}
	return out
}

// OwnsPartition reports whether the node still holds p in the tenure this writer holds it in
// (writer.PartitionOwner): only such a partition is snapshotted. By the lease clock, not the
// fence: a snapshot is not an append, and one saved by a node that has lost the partition would
// overwrite its new owner's.
func (g *generation) OwnsPartition(p int) bool {
	return g.owns(p, g.node.keeper.Owns)
}

// lostPartitions lists the partitions g loaded whose accounts its writer must drop now: the node
// no longer holds them in g's tenure, is not handing them over still (the snapshot its Drain
// saves needs their accounts), and g cannot keep them (keepable: handed over, or their fence
// moved). A partition whose lease merely lapsed while its fence is still g's is kept, so that
// re-acquiring it needs no load (settleTenures reads its fence on every reconcile and marks it
// lost once another node fences it). Called from the reconciler only.
func (n *node) lostPartitions(g *generation, held map[int]uint64) []int {
	var lost []int
	for p := range g.tenure {
		t, _ := g.tenureOf(p)
		if have, ok := held[p]; (ok && have == t) || g.forgotten[p] {
			continue
		}
		if have, ok := n.keeper.Tenure(p); ok && have == t {
			continue // still being handed over
		}
		if g.keepable(p) {
			continue
		}
		lost = append(lost, p)
	}
	sort.Ints(lost)
	return lost
}

// forgetLost tells g's writer to drop the accounts of the partitions lostPartitions names (a
// generation is only replaced when the node gains a partition). Called from the reconciler only.
func (n *node) forgetLost(g *generation, held map[int]uint64) {
	lost := n.lostPartitions(g, held)
	if len(lost) == 0 || !g.w.Forget(lost) {
		return
	}
	if g.forgotten == nil {
		g.forgotten = map[int]bool{}
	}
	for _, p := range lost {
		g.forgotten[p] = true
	}
}
