package server

import (
	"context"
	"time"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/partition"
	"github.com/creditledger/creditledger/writer"
)

// Hooks are interception points for tests that stall parts of a node (a paused process, a
// stalled disk); nil in production.
type Hooks struct {
	// BeforeAppend runs before every append this node's writer makes, on the append's goroutine.
	BeforeAppend func()
	// BeforeLeaseStep runs before every step of this node's lease keeper.
	BeforeLeaseStep func()
	// BeforeRejections runs before every write of a round's rejections to the rejection log, on
	// the write's goroutine.
	BeforeRejections func()
	// LeaseClock, when set, is the monotonic clock this node's lease keeper measures lease
	// validity on (partition.Config.Now): a test stops it to play a paused process whose clock
	// did not move meanwhile.
	LeaseClock func() time.Time
	// InAuditRead runs in each auditor direct get's slot before the read is passed on
	// (auditread.Config.InSlot): a test holds slots with it.
	InAuditRead func()
	// InAuditInfo runs in each auditor stream info's slot before it is passed on: a test holds
	// slots with it.
	InAuditInfo func()
}

// hookedStore runs Hooks.BeforeAppend before each append. It embeds the JetStream store itself,
// not the ledger.Store port, so that what the writer looks for beyond the port (partition reads,
// version hints) is still there: a hooked node runs the writer production runs.
type hookedStore struct {
	*jetstore.Store
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

// hookedRejections runs Hooks.BeforeRejections before each write of rejections.
type hookedRejections struct {
	writer.RejectionLog
	before func()
}

func (h hookedRejections) AppendRejections(ctx context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error) {
	h.before()
	return h.RejectionLog.AppendRejections(ctx, rs)
}

func (s *Server) hookRejections(l writer.RejectionLog) writer.RejectionLog {
	if s.cfg.Hooks == nil || s.cfg.Hooks.BeforeRejections == nil {
		return l
	}
	return hookedRejections{RejectionLog: l, before: s.cfg.Hooks.BeforeRejections}
}

// Decides reports whether this node's writer decides the account now: it holds the partition's
// lease, valid on its own clock, in the tenure its writer loaded, and has not found it fenced.
func (s *Server) Decides(accountID string) bool { return s.writer.Local(accountID) }

// leaseClock is Hooks.LeaseClock (nil: the keeper's own).
func (s *Server) leaseClock() func() time.Time {
	if s.cfg.Hooks == nil {
		return nil
	}
	return s.cfg.Hooks.LeaseClock
}

func (s *Server) hookStore(st *jetstore.Store) ledger.Store {
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

// LeaseValid reports whether this node holds partition p's lease by the lease clock now (it was
// renewed within the TTL less a margin). While the lease store cannot be reached it turns false
// and the node keeps appending to p on its fence alone (docs/OPERATIONS.md).
func (s *Server) LeaseValid(p int) bool {
	_, ok := s.writer.keeper.Owns(p)
	return ok
}

// Settled reports whether this node's writer decides every partition the node holds, in the
// tenure the node holds it in: no takeover is being fenced or loaded.
func (s *Server) Settled() bool { return s.writer.settled() }

// PartitionStats count how this node's partitions changed hands since it started.
func (s *Server) PartitionStats() PartitionStats { return s.writer.PartitionStats() }

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
