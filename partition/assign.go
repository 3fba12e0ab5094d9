package partition

import (
	"hash/fnv"
	"sort"
	"strconv"
)

// Assign says which of nodes should own each of n partitions: result[p] is the node for p, ""
// when there are no nodes. It is rendezvous (highest random weight) hashing, pure and
// deterministic: every node computes the same answer from the same member list (in any order);
// partitions spread about evenly; and when a node joins, only the partitions it wins move (to
// it), when one leaves, only its own move.
func Assign(n int, nodes []string) []string {
	out := make([]string, n)
	if len(nodes) == 0 {
		return out
	}
	sorted := append([]string(nil), nodes...)
	sort.Strings(sorted) // ties (equal weights) go to the same node everywhere
	for p := range out {
		var best uint64
		for i, node := range sorted {
			if w := weight(p, node); i == 0 || w > best {
				best, out[p] = w, node
			}
		}
	}
	return out
}

// weight is the pseudo-random score of node for partition p (FNV-1a 64 of "p/node", mixed).
func weight(p int, node string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strconv.Itoa(p)))
	_, _ = h.Write([]byte{'/'})
	_, _ = h.Write([]byte(node))
	return mix(h.Sum64())
}

// mix is the splitmix64 finaliser: FNV alone spreads similar short keys poorly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
