package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// CommandIDsRecorded says what RecordCommandIDs read and wrote.
type CommandIDsRecorded struct {
	// Since is where the read began: now less jetstore.CommandRetention, in the streams' stored
	// time (an older command's key would have expired from the bucket by now).
	Since time.Time
	// Events and Rejections are the positions of LEDGER and LEDGER_REJECTIONS that were read.
	Events, Rejections PositionRange
	// Recorded counts the command ids recorded now for the account they were used for first;
	// Found those the bucket held for that account already.
	Recorded, Found int
	// Conflicts lists each use of a command id for an account other than the one the bucket holds
	// it for, in stream order: a reuse decided while the id was unrecorded (or one recorded since
	// by a node), left as it is.
	Conflicts []string
	// Undecodable counts the events that could not be read (their command ids are not recorded).
	Undecodable int
	// NoRejectionLog is set when there is no LEDGER_REJECTIONS stream: no rejected command was
	// recorded.
	NoRejectionLog bool
}

// PositionRange is the positions of a stream a read covered; From is 0 when the stream stored
// nothing in the window.
type PositionRange struct {
	From, Head uint64
}

// recordBatchTimeout bounds the record of one batch of command ids (one atomic batch, or its
// creates one by one when some are held): a bucket whose leader is being elected answers within
// seconds; one that does not answer at all ends the command rather than hang it.
const recordBatchTimeout = 30 * time.Second

// RecordCommandIDs records in LEDGER_COMMANDS the command id of every command decided within the
// bucket's retention (jetstore.CommandRetention before now, by the stored time of the messages):
// the events of LEDGER, then the rejections of LEDGER_REJECTIONS, each command id for the account
// it was used for first in that order (writer.ClientCommandOf: a client's command; the writer's
// own are skipped). A lone embedded node records none while it owns every partition, nor did any
// node before the bucket existed, nor is a deleted bucket noticed: once other nodes own
// partitions, such an id could be reused for one of their accounts and decided afresh. The writes
// are creates only, so it is safe while nodes run; a command id held by another account is left
// as it is and reported (Conflicts). It refuses where there is no LEDGER stream, creating nothing.
func RecordCommandIDs(ctx context.Context, nc *nats.Conn, now time.Time) (CommandIDsRecorded, error) {
	st, err := jetstore.OpenExisting(ctx, nc, jetstore.Config{})
	if err != nil {
		return CommandIDsRecorded{}, err
	}
	// A bucket that is missing is made with the stream's replicas (a cluster's count).
	claims, err := jetstore.OpenCommandClaims(ctx, st.JetStream(), st.Replicas())
	if err != nil {
		return CommandIDsRecorded{}, err
	}
	out := CommandIDsRecorded{Since: now.Add(-jetstore.CommandRetention)}
	b := &commandBatch{claims: claims, out: &out, seen: map[commandUse]bool{}}
	if out.Events, err = b.readEvents(ctx, st, out.Since); err != nil {
		return out, err
	}
	if out.Rejections, err = b.readRejections(ctx, st, out.Since); err != nil {
		return out, err
	}
	return out, b.flush(ctx)
}

// commandUse is one command id used for one account.
type commandUse struct {
	commandID, account string
}

// usedAt says where a command use was read, for a conflict's report.
type usedAt struct {
	stream   string
	position uint64
}

// commandBatch records command uses in stream order, jetstore.MaxBatch of them at a time (one
// atomic batch when none is held), each once: a command's events are read one after the other.
type commandBatch struct {
	claims *jetstore.CommandClaims
	out    *CommandIDsRecorded
	uses   []commandUse
	wheres []usedAt
	seen   map[commandUse]bool // the uses in this batch
}

// add queues a use; a full batch is recorded first. A use the batch holds already is passed over.
func (b *commandBatch) add(ctx context.Context, u commandUse, at usedAt) error {
	if b.seen[u] {
		return nil
	}
	if len(b.uses) >= jetstore.MaxBatch {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	b.uses, b.wheres = append(b.uses, u), append(b.wheres, at)
	b.seen[u] = true
	return nil
}

// flush records the queued uses and counts the outcomes.
func (b *commandBatch) flush(ctx context.Context) error {
	if len(b.uses) == 0 {
		return nil
	}
	ids, accounts := make([]string, len(b.uses)), make([]string, len(b.uses))
	for i, u := range b.uses {
		ids[i], accounts[i] = u.commandID, u.account
	}
	cctx, cancel := context.WithTimeout(ctx, recordBatchTimeout)
	holders, created, err := b.claims.ClaimCommandsCreated(cctx, ids, accounts)
	cancel()
	if err != nil {
		return err
	}
	for i, u := range b.uses {
		switch {
		case holders[i] != u.account:
			b.out.Conflicts = append(b.out.Conflicts, fmt.Sprintf("command_id %q: held by %s, used for %s at %s position %d",
				u.commandID, holders[i], u.account, b.wheres[i].stream, b.wheres[i].position))
		case created[i]:
			b.out.Recorded++
		default:
			b.out.Found++
		}
	}
	b.uses, b.wheres = b.uses[:0], b.wheres[:0]
	clear(b.seen)
	return nil
}

// readEvents adds the client commands of the events LEDGER stored since.
func (b *commandBatch) readEvents(ctx context.Context, st *jetstore.Store, since time.Time) (PositionRange, error) {
	from, found, err := st.FirstSince(ctx, since)
	if err != nil || !found {
		return PositionRange{}, err
	}
	head, err := st.Read(ctx, from, func(rec ledger.Record) error {
		ev, err := events.Decode(rec.Data)
		if err != nil || ev.AccountID != rec.AccountID {
			b.out.Undecodable++
			return nil
		}
		id, ok := writer.ClientCommandOf(ev)
		if !ok {
			return nil
		}
		return b.add(ctx, commandUse{id, rec.AccountID}, usedAt{jetstore.StreamName, rec.Position})
	})
	if err != nil {
		return PositionRange{}, fmt.Errorf("read %s: %w", jetstore.StreamName, err)
	}
	return PositionRange{From: from, Head: head}, nil
}

// readRejections adds the rejected commands LEDGER_REJECTIONS stored since (its revocations are
// passed over: a revoked rejection was still a command sent for its account, which a node records
// before deciding it).
func (b *commandBatch) readRejections(ctx context.Context, st *jetstore.Store, since time.Time) (PositionRange, error) {
	log, err := jetstore.BindRejections(ctx, st)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		b.out.NoRejectionLog = true
		return PositionRange{}, nil
	}
	if err != nil {
		return PositionRange{}, err
	}
	from, found, err := log.FirstSince(ctx, since)
	if err != nil || !found {
		return PositionRange{}, err
	}
	var failed error // the read goes on to its end; the adds stop at the first failure
	head, err := log.ReadRejections(ctx, from, func(r ledger.Rejection, at ledger.RejectionAt) {
		if failed == nil {
			failed = b.add(ctx, commandUse{r.CommandID, r.AccountID}, usedAt{jetstore.RejectionStream, at.Position})
		}
	}, nil)
	if err == nil {
		err = failed
	}
	if err != nil {
		return PositionRange{}, fmt.Errorf("read %s: %w", jetstore.RejectionStream, err)
	}
	return PositionRange{From: from, Head: head}, nil
}
