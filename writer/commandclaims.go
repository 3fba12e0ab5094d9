package writer

import (
	"context"

	"github.com/creditledger/creditledger/ledger"
)

// CommandClaims records, in a store every ledger process shares, which account each command_id
// was first used for. A writer's idempotency record knows the command ids of the partitions it
// holds; a command_id used on an account of another partition, written by another node, is known
// only there. Without this record such a command_id, sent again with another body for an account
// of this writer, would be decided afresh where one writer answers idempotency_key_reused.
type CommandClaims interface {
	// ClaimCommands makes accounts[i] the holder of commandIDs[i] unless another account already
	// holds it, and returns the holders in order. Claiming a command id the same account holds
	// succeeds.
	ClaimCommands(ctx context.Context, commandIDs, accounts []string) (holders []string, err error)
}

// claimsCommand reports whether r must record its command id before its decision is kept: a
// client's command not recorded yet, on a writer that shares the store with writers of other
// partitions now, or may later (RecordEveryCommand). Otherwise a writer that owns every
// partition is the only one deciding any command, so its own record answers every reuse;
// roundOwns caches OwnsEverything for one round (it reads every lease). Only decisions a writer
// remembers record (events to append, a rejection it stores): an answer about the moment or a
// malformed command leaves the command id free, as on one node.
func (w *Writer) claimsCommand(r *request) bool {
	if w.opts.Commands == nil || r.internal || r.commandClaimed {
		return false
	}
	if w.opts.RecordEveryCommand {
		return true
	}
	if w.opts.Owner == nil {
		return false
	}
	if w.roundOwns == 0 {
		w.roundOwns = -1
		if w.opts.Owner.OwnsEverything() {
			w.roundOwns = 1
		}
	}
	return w.roundOwns < 0
}

// movesSubscription reports whether r links or unlinks a marketplace subscription: those write
// the subscription's claim while they are planned, so their command id is recorded before.
func movesSubscription(r *request) bool {
	switch r.Command.(type) {
	case ledger.LinkSubscription, ledger.UnlinkSubscription:
		return true
	}
	return false
}

// At most maxCommandJobs side jobs record command ids at once, each for at most maxCommandBatch
// commands: new commands that find them all running wait (unrecorded, outside the rounds, which
// would otherwise look them over again each time) and go back into the round, to be recorded
// together, once one of them ends. The side workers (maxSideWorkers) also read accounts back,
// replay older commands, reserve ids and step subscription moves; without the bound, a record
// that stalls (its leader's election: seconds) held every worker with one job per round, and
// the others queued behind them until each timed out (claimTimeout). The batch bound keeps the
// jobs' creates in flight within what one connection publishes at once (the JetStream client's
// 4,000 pending acknowledgements).
const (
	maxCommandJobs  = maxSideWorkers / 2
	maxCommandBatch = 1000
)

// recordCommands records the command ids of a round's new commands beside the loop, in as many
// jobs as the bounds allow; the rest wait for one of them to end.
func (w *Writer) recordCommands(rs []*request) {
	for len(rs) > 0 && w.commandJobs < maxCommandJobs {
		n := min(len(rs), maxCommandBatch)
		w.claimCommandsBeside(rs[:n:n])
		rs = rs[n:]
	}
	w.unrecorded = append(w.unrecorded, rs...)
}

// claimCommandsBeside records the command ids of new commands beside the loop (one job, one
// round trip for all of them), then puts back those whose account holds its command id,
// to be decided, and answers the others idempotency_key_reused: the command id was used for
// another account first (a retry of that command belongs to that account's partition). A store
// that does not answer fails them unavailable; a retry with the same command_id records again.
func (w *Writer) claimCommandsBeside(rs []*request) {
	claims := w.opts.Commands
	ids, accounts := make([]string, len(rs)), make([]string, len(rs))
	for i, r := range rs {
		ids[i], accounts[i] = r.CommandID, r.AccountID
	}
	w.commandJobs++
	w.side.start(func(ctx context.Context) func() []*request {
		cctx, cancel := context.WithTimeout(ctx, claimTimeout)
		holders, err := claims.ClaimCommands(cctx, ids, accounts)
		cancel()
		return func() []*request {
			w.commandJobs--
			if err == nil {
				w.stats.commandClaims.Add(uint64(len(rs)))
			}
			back := w.unrecorded // to be recorded again with the next round's, in a free job
			w.unrecorded = nil
			for i, r := range rs {
				switch {
				case err != nil:
					w.reject(r, ledger.Reject(ledger.CodeUnavailable,
						"recording command_id %s: %v; retry with the same command_id", r.CommandID, err))
				case holders[i] != r.AccountID:
					w.reject(r, ledger.Reject(ledger.CodeIdempotencyKeyReused,
						"command_id %s was already used for another account", r.CommandID))
				default:
					r.commandClaimed = true
					back = append(back, r)
				}
			}
			return back
		}
	})
}
