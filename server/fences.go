package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
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
	FenceHead(ctx context.Context, p int) (uint64, error)
}

// maxFenceReads bounds the fence heads read at once when a generation fences its partitions.
const maxFenceReads = 16

// fenceTimeout bounds fencing a generation's new partitions (the reads and the write).
const fenceTimeout = 10 * time.Second

// fence returns the ownership record of every partition in tenure: the one prev wrote for a
// partition it holds in the same tenure (and has not lost), and a new one, written now in one
// store call, for every other. Two would-be owners that read the same fence head cannot both
// write: the second is refused (ledger.ErrConflict) and retries at the next reconcile.
func (n *node) fence(ctx context.Context, prev *generation, tenure map[int]uint64) (map[int]uint64, error) {
	out := make(map[int]uint64, len(tenure))
	var todo []int
	for p, t := range tenure {
		if prev != nil && prev.tenure[p] == t && !prev.lost(p) {
			if pos, ok := prev.fences[p]; ok {
				out[p] = pos
				continue
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
	heads, err := n.fenceHeads(ctx, todo)
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
	n.log.Info().Int("partitions", len(todo)).Dur("read", read).Dur("took", time.Since(t0)).Msg("partitions fenced")
	return out, nil
}

// fenceHeads reads the fence head of each partition in ps (at most maxFenceReads at once).
func (n *node) fenceHeads(ctx context.Context, ps []int) ([]uint64, error) {
	heads := make([]uint64, len(ps))
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxFenceReads)
	for i, p := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			heads[i], errs[i] = n.fences.FenceHead(ctx, p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return heads, nil
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
	if t, held := g.node.keeper.Tenure(p); !held || t != g.tenure[p] {
		return p, 0, false
	}
	return p, pos, true
}

// Lost is told by the writer that partition p's fence moved: another node took it over while
// this one was stalled. The generation stops owning it at once, and the keeper forgets the
// lease (there is nothing left to renew or hand over).
func (g *generation) Lost(p int) {
	g.mu.Lock()
	if g.gone == nil {
		g.gone = map[int]bool{}
	}
	g.gone[p] = true
	g.mu.Unlock()
	if t, ok := g.tenure[p]; ok && g.node.keeper.Drop(p, t) {
		g.node.notify()
	}
}

func (g *generation) lost(p int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gone[p]
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
