package server

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// The partition fence (docs/OPERATIONS.md, "Partitions"): a generation that takes a partition
// over (a new tenure) first stores an ownership record on the partition's fence subject,
// expecting the last one it read there, and every append it makes expects that record to be
// the partition's last. A node that lost the lease while stalled still expects the record it
// wrote: the server refuses its append, whatever its own clock or lease table says.

// fenceStore is what the node needs of the event store to fence partitions.
type fenceStore interface {
	Fence(ctx context.Context, claims []ledger.FenceClaim) ([]uint64, error)
	FenceHeads(ctx context.Context, ps []int) ([]uint64, error)
}

// fenceTimeout bounds fencing a generation's new partitions (the reads and the write).
const fenceTimeout = 10 * time.Second

// fence returns the ownership record of every partition in tenure: the one prev holds for a
// partition it holds in the same tenure (and has not lost; settleTenures may have kept it across
// a re-acquire), and a new one, written now in one store call, for every other. Two would-be owners that read the same fence head cannot both
// write: the second is refused (ledger.ErrConflict) and retries at the next reconcile.
func (n *node) fence(ctx context.Context, prev *generation, tenure map[int]uint64) (map[int]uint64, error) {
	out := make(map[int]uint64, len(tenure))
	var todo []int
	for p, t := range tenure {
		if prev != nil && !prev.lost(p) {
			if have, ok := prev.tenureOf(p); ok && have == t {
				if pos, ok := prev.fences[p]; ok {
					out[p] = pos
					continue
				}
			}
		}
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		return out, nil
	}
	sort.Ints(todo)
	ctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	t0 := time.Now()
	heads, err := n.fences.FenceHeads(ctx, todo) // one request, and it sees every earlier record
	if err != nil {
		return nil, err
	}
	read := time.Since(t0)
	now := n.clock.Now().UTC()
	claims := make([]ledger.FenceClaim, len(todo))
	for i, p := range todo {
		claims[i] = ledger.FenceClaim{Expect: heads[i], Fence: ledger.Fence{Format: ledger.FenceFormat,
			LeaseRevision: tenure[p], Owner: n.owner, Partition: p, Partitions: n.n, Time: now}}
	}
	pos, err := n.fences.Fence(ctx, claims)
	if err != nil {
		return nil, fmt.Errorf("fence %d partitions: %w", len(todo), err)
	}
	for i, p := range todo {
		out[p] = pos[i]
	}
	n.fenced.Add(uint64(len(todo)))
	n.log.Info().Int("partitions", len(todo)).Dur("read", read).Dur("took", time.Since(t0)).Msg("partitions fenced")
	return out, nil
}

// settleTenures reads the fence head of every partition g loaded that the node no longer holds
// in g's tenure (re-acquired in a new tenure, or not held now) and that g could keep (keepable).
// A head that is still g's ownership record means nobody took the partition over since g fenced
// it: nobody else appended to its accounts, so g's memory of them is whole (but for a
// subscription holder, which another node's move appends to under its version check alone; the
// writer keeps that check on its appends and reads its version after a rejection: writer/fence.go,
// writer/rejections.go). Such a partition,
// re-acquired, is kept in place: g adopts the new tenure (no new record, no load); not held, its
// accounts are kept for a re-acquire (forgetLost). A head that moved loses the partition to g.
// This is what makes a lapse of every lease (the lease store's leader died and its election
// outlasted the TTL) cost nothing but the lapse. A read that is behind the stream only delays
// the news: the writer's next append carries the record it holds, the server refuses it, and
// the partition is lost (writer.Fences.Lost) and fenced anew. The heads are read in one call
// (ledger.Store.FenceHeads). It returns an error when they could not be read and a re-acquired
// partition waits for them: the next reconcile tries again.
func (n *node) settleTenures(ctx context.Context, g *generation, held map[int]uint64) error {
	var ps []int
	for p := range g.tenure {
		t, _ := g.tenureOf(p)
		if h, ok := held[p]; (ok && h == t) || !g.keepable(p) {
			continue
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil
	}
	sort.Ints(ps)
	ctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	heads, err := n.fences.FenceHeads(ctx, ps)
	if err != nil {
		for _, p := range ps {
			if _, reacquired := held[p]; reacquired {
				return fmt.Errorf("read the fences of %d partitions: %w", len(ps), err)
			}
		}
		return nil // only lapsed ones: their accounts stay until a read shows their fence moved
	}
	var kept []int
	for i, p := range ps {
		t, reacquired := held[p]
		switch {
		case heads[i] != g.fences[p]:
			g.moved(p)
		case reacquired:
			g.tenure[p].Store(t) // the writer owns p again from here on, in tenure t
			kept = append(kept, p)
		}
	}
	if len(kept) > 0 {
		n.kept.Add(uint64(len(kept)))
		n.log.Info().Ints("partitions", kept).Msg("partitions re-acquired with their fence unchanged; kept without a new fence or a load")
	}
	return nil
}

// Fence is the partition fence the writer's appends carry for the account (writer.Fences): the
// ownership record this generation holds for its partition, while the node still holds the
// lease in the tenure it fenced and no other node fenced it since. An account of a partition
// handed over (a subscription move writes one) carries only its head check.
func (g *generation) Fence(accountID string) (int, uint64, bool) {
	p := ledger.PartitionOf(accountID, g.node.n)
	pos, ok := g.fences[p]
	if !ok || g.lost(p) {
		return p, 0, false
	}
	if t, held := g.node.keeper.Tenure(p); !held || t != g.tenure[p].Load() {
		return p, 0, false
	}
	return p, pos, true
}

// Lost is told by the writer that partition p's fence moved: another node took it over while
// this one was stalled. The generation stops owning it at once, and the keeper forgets the
// lease (there is nothing left to renew or hand over).
func (g *generation) Lost(p int) {
	g.moved(p)
	// A tenure adopted after this read (settleTenures) is not dropped here; the reconciler
	// then sees p held but lost, and fences it anew in a new generation.
	if t, ok := g.tenureOf(p); ok && g.node.keeper.Drop(p, t) {
		g.node.notify()
	}
}

func (g *generation) lost(p int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gone[p]
}

// moved notes that partition p's fence is no longer g's (read by settleTenures for a partition
// the node does not hold in g's tenure, so there is no lease to drop).
func (g *generation) moved(p int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone == nil {
		g.gone = map[int]bool{}
	}
	g.gone[p] = true
}

// handOver notes that g drains partition p (every partition: all) to hand it over.
func (g *generation) handOver(p int, all bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.handed == nil {
		g.handed = map[int]bool{}
	}
	if !all {
		g.handed[p] = true
		return
	}
	for q := range g.tenure {
		g.handed[q] = true
	}
}

// keepable reports whether g may keep partition p's accounts while the node does not hold it in
// g's tenure: g holds an ownership record for p, has not seen it move, has not handed p over,
// and has not dropped its accounts. Called from the reconciler (forgotten is its own).
func (g *generation) keepable(p int) bool {
	if _, ok := g.fences[p]; !ok || g.forgotten[p] {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.gone[p] && !g.handed[p]
}

// fenceOwner is a node name as a ledger id (the Owner of its ownership records): characters
// outside [A-Za-z0-9_-] become '-', and it is cut to ledger.MaxIDLen.
func fenceOwner(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			b[i] = '-'
		}
	}
	if len(b) > ledger.MaxIDLen {
		b = b[:ledger.MaxIDLen]
	}
	if len(b) == 0 {
		return "ledger"
	}
	return string(b)
}

var _ writer.Fences = (*generation)(nil)
