package server

import (
	"context"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/partition"
)

// Hooks are interception points for tests that stall parts of a node (a paused process, a
// stalled disk); nil in production.
type Hooks struct {
	// BeforeAppend runs before every append this node's writer makes, on the append's goroutine.
	BeforeAppend func()
	// BeforeLeaseStep runs before every step of this node's lease keeper.
	BeforeLeaseStep func()
}

// hookedStore runs Hooks.BeforeAppend before each append.
type hookedStore struct {
	ledger.Store
	before func()
}

func (h hookedStore) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	h.before()
	return h.Store.Append(ctx, recs)
}

// hookedLeases runs Hooks.BeforeLeaseStep before each step (a step starts with the heartbeat).
type hookedLeases struct {
	partition.Leases
	before func()
}

func (h hookedLeases) Heartbeat(ctx context.Context, node string) error {
	h.before()
	return h.Leases.Heartbeat(ctx, node)
}

func (s *Server) hookStore(st ledger.Store) ledger.Store {
	if s.cfg.Hooks == nil || s.cfg.Hooks.BeforeAppend == nil {
		return st
	}
	return hookedStore{Store: st, before: s.cfg.Hooks.BeforeAppend}
}

func (s *Server) hookLeases(l partition.Leases) partition.Leases {
	if s.cfg.Hooks == nil || s.cfg.Hooks.BeforeLeaseStep == nil {
		return l
	}
	return hookedLeases{Leases: l, before: s.cfg.Hooks.BeforeLeaseStep}
}

// Partitions lists the partitions this node holds and is not handing over, in order.
func (s *Server) Partitions() []int {
	held := s.writer.keeper.Held()
	out := make([]int, 0, len(held))
	for p := 0; p < s.writer.n; p++ {
		if _, ok := held[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

// Tenure is the lease revision this node acquired partition p at (false: not held): a partition
// lost and taken again has a new one.
func (s *Server) Tenure(p int) (uint64, bool) {
	t, ok := s.writer.keeper.Held()[p]
	return t, ok
}

// PartitionCount is the store's partition count.
func (s *Server) PartitionCount() int { return s.writer.n }

// Kill stops the node as abruptly as a process can be stopped in-process (a test's kill -9):
// its NATS connections close at once, nothing is handed over, and its leases lapse after
// their TTL. The embedded NATS server, if any, is shut down without lame-duck mode.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		if s.svcNC != nil {
			s.svcNC.Close()
		}
		if s.nc != nil {
			s.nc.Close()
		}
		if s.cancel != nil {
			s.cancel()
		}
		if s.http != nil {
			close(s.httpStop)
			_ = s.http.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		s.wg.Wait()
		if s.prod.leases != nil {
			s.prod.leases.Close()
		}
		_ = s.dirLock.Close() // the kernel drops a dead process's flock
	})
}
