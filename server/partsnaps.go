package server

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
		if t, ok := n.keeper.Tenure(q); ok && g.tenure[q] == t {
			out = append(out, q)
		}
	}
	return out
}

// OwnsPartition reports whether the node still holds p in the tenure this writer loaded
// (writer.PartitionOwner): only such a partition is snapshotted.
func (g *generation) OwnsPartition(p int) bool {
	want, loaded := g.tenure[p]
	if !loaded {
		return false
	}
	have, ok := g.node.keeper.Owns(p)
	return ok && have == want
}

// forgetLost tells g's writer to drop the accounts of the partitions g loaded that the node no
// longer holds in that tenure (a generation is only replaced when the node gains a partition).
// Called from the reconciler only.
func (n *node) forgetLost(g *generation, held map[int]uint64) {
	var lost []int
	for p, t := range g.tenure {
		if held[p] == t || g.forgotten[p] {
			continue
		}
		if have, ok := n.keeper.Tenure(p); ok && have == t {
			continue // still being handed over: its snapshot (Drain) needs its accounts
		}
		lost = append(lost, p)
	}
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
