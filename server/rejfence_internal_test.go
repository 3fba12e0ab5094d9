package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// steps records, in order, the ownership records a node stored and the reads of the rejection
// log its writers made.
type steps struct {
	mu  sync.Mutex
	log []string
}

func (s *steps) add(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, step)
}

func (s *steps) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// recordedFences is the node's fence store, noting each write once it is stored.
type recordedFences struct {
	st    *memstore.Store
	steps *steps
}

func (f recordedFences) Fence(ctx context.Context, claims []ledger.FenceClaim) ([]uint64, error) {
	pos, err := f.st.Fence(ctx, claims)
	if err == nil {
		ps := make([]int, len(claims))
		for i, c := range claims {
			ps[i] = c.Fence.Partition
		}
		f.steps.add(fmt.Sprintf("fenced %v", ps))
	}
	return pos, err
}

func (f recordedFences) FenceHeads(ctx context.Context, ps []int) ([]uint64, error) {
	return f.st.FenceHeads(ctx, ps)
}

// recordedRejections is an empty rejection log that notes each read as it begins.
type recordedRejections struct{ steps *steps }

func (recordedRejections) AppendRejections(_ context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error) {
	return make([]ledger.RejectionAt, len(rs)), nil
}

func (recordedRejections) RevokeRejections(context.Context, []ledger.Revocation) error { return nil }

func (recordedRejections) FirstPosition(context.Context) (uint64, error) { return 1, nil }

func (r recordedRejections) ReadRejections(context.Context, uint64, func(ledger.Rejection, ledger.RejectionAt), func(ledger.Revocation)) (uint64, error) {
	r.steps.add("read rejections")
	return 0, nil
}

func (recordedRejections) ReadRejectionAt(context.Context, ledger.RejectionAt) (ledger.Rejection, error) {
	return ledger.Rejection{}, ledger.ErrNoRecord
}

// TestGenerationFencesBeforeItLoadsRejections pins the order a writer's rejection answers rely on
// (writer/rejections.go, finishRejections): a generation that takes partitions over stores their
// ownership records first, and its writer reads the rejection log only after that write is
// stored. A rejection durable before the old owner's fence read found its own record is
// therefore in the new owner's load.
func TestGenerationFencesBeforeItLoadsRejections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, rec := memstore.New(), &steps{}
	clock := NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := &node{log: zerolog.Nop(), n: 4, fences: recordedFences{st: st, steps: rec}, owner: "node-a", clock: clock}
	n.newWriter = func(holds func(string) bool, owner fencedOwner, held []int) (*writer.Writer, error) {
		rec.add("new writer")
		return writer.New(writer.Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()), Clock: clock,
			NewID: func() string { return "id" }, Log: zerolog.Nop(), Rejections: recordedRejections{steps: rec},
			Holds: holds, Owner: owner, Fences: owner, Partitions: writer.Partitions{Count: 4, Held: held}})
	}

	g1, err := n.generation(ctx, nil, map[int]uint64{0: 1, 1: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"fenced [0 1]", "new writer", "read rejections"}, rec.all())
	heads, err := st.FenceHeads(ctx, []int{0, 1, 2})
	require.NoError(t, err)
	assert.Equal(t, []uint64{g1.fences[0], g1.fences[1], 0}, heads)

	// A later generation takes partition 2 over as well: the new fence, then the load.
	rec.log = nil
	g2, err := n.generation(ctx, g1, map[int]uint64{0: 1, 1: 1, 2: 7})
	require.NoError(t, err)
	assert.Equal(t, []string{"fenced [2]", "new writer", "read rejections"}, rec.all())
	assert.Equal(t, g1.fences[0], g2.fences[0], "a partition held in the same tenure keeps its record")
}
