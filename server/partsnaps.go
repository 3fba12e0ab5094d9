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
