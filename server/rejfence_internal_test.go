package server

import (
	"context"
	"errors"
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

// recordedFences is the node's fence store, noting each write once it is stored; with a gate,
// a write waits for it to close first (a stream electing its leader).
type recordedFences struct {
	st    *memstore.Store
	steps *steps
	gate  <-chan struct{}
}

func (f recordedFences) Fence(ctx context.Context, claims []ledger.FenceClaim) ([]uint64, error) {
	if f.gate != nil {
		<-f.gate
	}
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

// notedWriters is a node's writer factory over st (four partitions), noting each writer built;
// its writers note their reads of the rejection log.
func notedWriters(st ledger.Store, rec *steps, clock writer.Clock) func(func(string) bool, fencedOwner, []int) (*writer.Writer, error) {
	return func(holds func(string) bool, owner fencedOwner, held []int) (*writer.Writer, error) {
		rec.add("new writer")
		return writer.New(writer.Options{Store: st, Rules: ledger.NewRules(ledger.DefaultCatalogue()), Clock: clock,
			NewID: func() string { return "id" }, Log: zerolog.Nop(), Rejections: recordedRejections{steps: rec},
			Holds: holds, Owner: owner, Fences: owner, Partitions: writer.Partitions{Count: 4, Held: held}})
	}
}

// notedNode is a node of four partitions over a memstore whose fence writes (held until gate
// closes, when there is one) and whose writers note their steps; its writers read the store
// through read(st, steps).
func notedNode(gate <-chan struct{}, read func(*memstore.Store, *steps) ledger.Store) (*node, *memstore.Store, *steps) {
	st, rec := memstore.New(), &steps{}
	clock := NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := &node{log: zerolog.Nop(), n: 4, fences: recordedFences{st: st, steps: rec, gate: gate}, owner: "node-a", clock: clock}
	n.newWriter = notedWriters(read(st, rec), rec, clock)
	return n, st, rec
}

// TestGenerationFencesBeforeItLoadsRejections pins the order a writer's rejection answers rely on
// (writer/rejections.go, finishRejections): a generation that takes partitions over stores their
// ownership records first, and its writer reads the rejection log only after that write is
// stored. A rejection durable before the old owner's fence read found its own record is
// therefore in the new owner's load.
func TestGenerationFencesBeforeItLoadsRejections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n, st, rec := notedNode(nil, func(st *memstore.Store, _ *steps) ledger.Store { return st })

	g1, err := n.generation(ctx, nil, map[int]uint64{0: 1, 1: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"fenced [0 1]", "new writer", "read rejections"}, rec.all(), "at start: the fence, then the load")
	heads, err := st.FenceHeads(ctx, []int{0, 1, 2})
	require.NoError(t, err)
	assert.Equal(t, []uint64{g1.fences[0], g1.fences[1], 0}, heads)

	// A later generation takes partition 2 over as well: the load beside the new fence, the
	// rejection log after it.
	rec.log = nil
	g2, err := n.generation(ctx, g1, map[int]uint64{0: 1, 1: 1, 2: 7})
	require.NoError(t, err)
	assert.Equal(t, []string{"new writer", "fenced [2]", "read rejections"}, rec.all())
	assert.Equal(t, g1.fences[0], g2.fences[0], "a partition held in the same tenure keeps its record")
}

// notedReads is a store that notes each whole-store read as it ends: from the nearest replica
// (ReadNear) or from the leader (Read).
type notedReads struct {
	*memstore.Store
	steps *steps
	// nearFails makes ReadNear fail (nobody serves direct gets).
	nearFails bool
}

func (s notedReads) ReadNear(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	head, err := s.Store.ReadNear(ctx, from, fn)
	if s.nearFails {
		err = errors.New("nobody serves direct gets")
	}
	s.steps.add(fmt.Sprintf("read near from %d", from))
	return head, err
}

func (s notedReads) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	head, err := s.Store.Read(ctx, from, fn)
	s.steps.add(fmt.Sprintf("read from %d", from))
	return head, err
}

// running is the generation of a running node that held no partition yet (a takeover's prev).
func running(n *node) *generation {
	return &generation{node: n, tenure: tenures(nil), fences: map[int]uint64{}}
}

// TestGenerationLoadsWhileItFences: a running node's takeover load does not wait for its ownership records,
// whose write waits for the stream's leader (an election of 4-9 s when the leader died with the
// node whose partitions these were): the writer reads the nearest replica while the fence is held
// up, then, once the records are stored, reads the rest from the leader, past them, and the
// rejection log.
func TestGenerationLoadsWhileItFences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gate := make(chan struct{})
	n, st, rec := notedNode(gate, func(st *memstore.Store, rec *steps) ledger.Store { return notedReads{Store: st, steps: rec} })
	type result struct {
		g   *generation
		err error
	}
	done := make(chan result, 1)
	go func() {
		g, err := n.generation(ctx, running(n), map[int]uint64{0: 1, 1: 1})
		done <- result{g, err}
	}()
	assert.Eventually(t, func() bool { return len(rec.all()) >= 2 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []string{"new writer", "read near from 1"}, rec.all(), "loaded while the fence waits")
	close(gate)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, []string{"new writer", "read near from 1", "fenced [0 1]", "read from 1", "read rejections"}, rec.all(),
		"then the rest from the leader, past the records stored")
	heads, err := st.FenceHeads(ctx, []int{0, 1})
	require.NoError(t, err)
	assert.Equal(t, []uint64{r.g.fences[0], r.g.fences[1]}, heads)
	assert.Equal(t, heads[1], r.g.w.Head(), "the writer's head is past its ownership records")
}

// TestGenerationLoadsAfterTheFenceWhenTheNearReadFails: a load beside the fence that fails is
// not the end of the takeover: a new writer loads from the leader once the records are stored.
func TestGenerationLoadsAfterTheFenceWhenTheNearReadFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n, st, rec := notedNode(nil, func(st *memstore.Store, rec *steps) ledger.Store {
		return notedReads{Store: st, steps: rec, nearFails: true}
	})
	g, err := n.generation(ctx, running(n), map[int]uint64{0: 1, 1: 1})
	require.NoError(t, err)
	log := rec.all()
	require.Len(t, log, 6, "%v", log)
	assert.ElementsMatch(t, []string{"read near from 1", "fenced [0 1]"}, log[1:3], "the near read and the fence, in either order")
	assert.Equal(t, []string{"new writer", "new writer", "read from 1", "read rejections"}, []string{log[0], log[3], log[4], log[5]})
	heads, err := st.FenceHeads(ctx, []int{0, 1})
	require.NoError(t, err)
	assert.Equal(t, heads[1], g.w.Head())
}
