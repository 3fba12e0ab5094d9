package writer_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/writer"
)

// ownsAll is partOwner for a writer that holds every partition.
type ownsAll struct{ partOwner }

func (ownsAll) OwnsEverything() bool { return true }

// A command_id first used on an account of one writer's partition is refused
// idempotency_key_reused when it comes, with another body, for an account of a partition another
// writer holds, accepted or rejected the first time, and nothing is appended for it; a retry of
// the first command is still replayed by its own writer, and a new command id of either writer is
// recorded once and decided. Without the shared record the second writer decided it afresh.
func TestCommandIDReusedInAnotherPartitionIsRefused(t *testing.T) {
	t.Parallel()
	st, claims := memstore.New(), &memstore.CommandClaims{}
	withClaims := func(o *writer.Options) { o.Commands = claims }
	a0, a2 := accountsIn(0, 1, "cc")[0], accountsIn(2, 1, "cc")[0]
	w1, _ := partWriterWith(t, st, nil, withClaims, 0, 1)
	w2, _ := partWriterWith(t, st, nil, withClaims, 2, 3)
	run(t, w1)
	run(t, w2)

	first := send(t, w1, "purchase_license", buyL("buy-1", a0, "L-a0"))
	require.Nil(t, first.Err)
	require.Nil(t, send(t, w2, "purchase_license", buyL("buy-2", a2, "L-a2")).Err)
	head := storeHead(t, st)

	reused := send(t, w2, "purchase_license", buyL("buy-1", a2, "L-other"))
	require.NotNil(t, reused.Err, "a command_id accepted on another partition's account")
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, reused.Err.Code)

	over := map[string]any{"command_id": "alloc-1", "account_id": a0, "feature": "file_security", "credits": "500"}
	rejected := send(t, w1, "allocate_credits", over)
	require.NotNil(t, rejected.Err)
	require.Equal(t, ledger.CodeInsufficientCredits, rejected.Err.Code)
	over["account_id"], over["credits"] = a2, "5"
	reusedRejected := send(t, w2, "allocate_credits", over)
	require.NotNil(t, reusedRejected.Err, "a command_id rejected on another partition's account")
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, reusedRejected.Err.Code)

	assert.Equal(t, head, storeHead(t, st), "nothing appended for a reused command_id")
	again := send(t, w1, "purchase_license", buyL("buy-1", a0, "L-a0"))
	require.Nil(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Position, again.Position)
	asked := claims.Asked()
	require.Nil(t, send(t, w1, "purchase_license", buyL("buy-1", a0, "L-a0")).Err)
	assert.Equal(t, asked, claims.Asked(), "a retry its writer knows is not recorded again")
	assert.Equal(t, uint64(2), w1.Stats().CommandClaims, "w1 recorded buy-1 and alloc-1")
}

// A writer that owns every partition records no command id (its own record knows them all),
// unless other processes may share its store (RecordEveryCommand); a record that cannot be reached fails new commands unavailable, appending nothing, and a retry
// with the same command_id once it answers is decided.
func TestCommandIDRecordOnlyWhereOthersDecide(t *testing.T) {
	t.Parallel()
	st, claims := memstore.New(), &memstore.CommandClaims{}
	a0 := accountsIn(0, 1, "co")[0]
	alone, _ := partWriterWith(t, st, nil, func(o *writer.Options) {
		o.Commands = claims
		o.Owner = ownsAll{o.Owner.(partOwner)}
	}, 0, 1, 2, 3)
	stop := run(t, alone)
	require.Nil(t, send(t, alone, "purchase_license", buyL("alone-1", a0, "L-alone")).Err)
	assert.Zero(t, claims.Asked(), "a writer of every partition records nothing")
	stop()

	// Where other processes may share the store, a writer that owns every partition now records
	// all the same: it may give partitions away later.
	shared, _ := partWriterWith(t, st, nil, func(o *writer.Options) {
		o.Commands, o.RecordEveryCommand = claims, true
		o.Owner = ownsAll{o.Owner.(partOwner)}
	}, 0, 1, 2, 3)
	stop = run(t, shared)
	require.Nil(t, send(t, shared, "purchase_license", buyL("shared-1", a0, "L-shared")).Err)
	assert.Equal(t, 1, claims.Asked(), "a writer that may share the store records while it owns everything")
	stop()

	w, _ := partWriterWith(t, st, nil, func(o *writer.Options) { o.Commands = claims }, 0, 1)
	run(t, w)
	claims.FailWith(errors.New("bucket unreachable"))
	head := storeHead(t, st)
	res := send(t, w, "purchase_license", buyL("part-1", a0, "L-part"))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeUnavailable, res.Err.Code)
	assert.Equal(t, head, storeHead(t, st), "nothing appended while the record cannot be reached")
	claims.FailWith(nil)
	res = send(t, w, "purchase_license", buyL("part-1", a0, "L-part"))
	require.Nil(t, res.Err)
	assert.False(t, res.Replayed)
}

// storeHead is the store's last position (a read to the end).
func storeHead(t *testing.T, st ledger.Store) uint64 {
	t.Helper()
	head, err := st.Read(context.Background(), 1, func(ledger.Record) error { return nil })
	require.NoError(t, err)
	return head
}

// hangingCommands is a command-id record that does not answer (its leader's election): every
// claim waits for its context, which is counted.
type hangingCommands struct{ entered, left atomic.Int32 }

func (h *hangingCommands) ClaimCommands(ctx context.Context, _, _ []string) ([]string, error) {
	h.entered.Add(1)
	defer h.left.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// While the command-id record hangs, new commands arriving round after round hold a few side
// workers, not all of them: a retry of an older command, read back from the store beside the
// loop, is still answered at once, before any record's wait has ended, and the new commands
// wait together for the next record. On the previous build each round's new commands took a
// worker until all eight waited out claimTimeout (5 s), and the read-back queued behind them.
func TestHangingCommandRecordLeavesSideWorkersFree(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	mine := accountsIn(0, 13, "hang")
	old, _ := partWriterWith(t, st, nil, nil, 0, 1)
	stop := run(t, old)
	first := send(t, old, "purchase_license", buyL("old-1", mine[0], "L-old"))
	require.Nil(t, first.Err)
	stop()

	hang := &hangingCommands{}
	w, _ := partWriterWith(t, st, nil, func(o *writer.Options) { o.Commands = hang }, 0, 1) // its load compacts old-1
	run(t, w)
	other := accountsIn(2, 1, "hang")[0]
	var pending []<-chan writer.Result
	for i, acct := range mine[1:] {
		pending = append(pending, submitted(t, w, "purchase_license", buyL(fmt.Sprintf("new-%d", i), acct, fmt.Sprintf("L-new-%d", i))))
		// A command this writer passes on, answered in the round: the next new command comes in
		// a round of its own.
		require.True(t, send(t, w, "purchase_license", buyL(fmt.Sprintf("probe-%d", i), other, fmt.Sprintf("L-p-%d", i))).Redirect)
	}
	replay := submitted(t, w, "purchase_license", buyL("old-1", mine[0], "L-old"))
	select {
	case res := <-replay:
		require.Nil(t, res.Err)
		assert.True(t, res.Replayed)
		assert.Equal(t, first.Position, res.Position)
		assert.Zero(t, hang.left.Load(), "answered while every record still waited")
		assert.Equal(t, uint64(1), w.Stats().ReadBack, "old-1 was read back beside the loop")
	case <-time.After(10 * time.Second):
		t.Fatal("the read-back never ran")
	}
	assert.LessOrEqual(t, hang.entered.Load(), int32(4), "records at once")
	for _, c := range pending {
		select {
		case res := <-c:
			t.Fatalf("a new command was answered while its record hung: %+v", res)
		default:
		}
	}
}

// batchCounting is the in-memory record that keeps the largest batch it was asked to record.
type batchCounting struct {
	memstore.CommandClaims
	largest atomic.Int32
}

func (b *batchCounting) ClaimCommands(ctx context.Context, ids, accounts []string) ([]string, error) {
	for n := int32(len(ids)); ; {
		if cur := b.largest.Load(); n <= cur || b.largest.CompareAndSwap(cur, n) {
			break
		}
	}
	return b.CommandClaims.ClaimCommands(ctx, ids, accounts)
}

// A round of more new commands than one record holds (1,500 queued at once) records them in
// batches of at most 1,000, whose creates stay within what the JetStream client keeps pending
// (4,000 over the four jobs at once, not a stall), and every command is decided.
func TestCommandRecordBatchesAreBounded(t *testing.T) {
	t.Parallel()
	claims := &batchCounting{}
	w, _ := partWriterWith(t, memstore.New(), nil, func(o *writer.Options) { o.Commands = claims }, 0, 1)
	accts := append(accountsIn(0, 750, "many"), accountsIn(1, 750, "many")...)
	results := make([]<-chan writer.Result, len(accts))
	for i, acct := range accts { // queued before the writer runs: one round
		results[i] = submitted(t, w, "purchase_license", buyL("many-"+acct, acct, "L-"+acct))
	}
	run(t, w)
	for _, c := range results {
		require.Nil(t, result(t, c).Err)
	}
	assert.Equal(t, int32(1000), claims.largest.Load())
	assert.Equal(t, uint64(len(accts)), w.Stats().CommandClaims)
}

// gatedCommands holds every record until its gate opens, then records in the shared record;
// calls counts the records asked for.
type gatedCommands struct {
	*memstore.CommandClaims
	gate  *gate
	calls *atomic.Int32
}

func (g gatedCommands) ClaimCommands(ctx context.Context, ids, accounts []string) ([]string, error) {
	if g.calls != nil {
		g.calls.Add(1)
	}
	if err := g.gate.pass(ctx); err != nil {
		return nil, err
	}
	return g.CommandClaims.ClaimCommands(ctx, ids, accounts)
}

// A command whose account's partition moves away while its command_id is being recorded is
// passed on (Redirect), not decided by the writer that recorded it, and the new owner, which
// records it again for the same account, decides it: a record of its own account never refuses
// it. Another account's use of that command_id is then refused.
func TestCommandRecordedBeforeItsPartitionMovedIsDecidedByTheNewOwner(t *testing.T) {
	t.Parallel()
	st, claims := memstore.New(), &memstore.CommandClaims{}
	acct, elsewhere := accountsIn(0, 1, "mv")[0], accountsIn(2, 1, "mv")[0]
	g := newGate()
	o := &owner{mine: map[string]bool{acct: true}}
	o.on.Store(true)
	old := memWriter(t, st, writer.Options{Owner: o, Commands: gatedCommands{claims, g, nil}})
	run(t, old)
	moving := submitted(t, old, "purchase_license", buyL("mv-1", acct, "L-mv"))
	<-g.entered
	o.on.Store(false) // the partition moves while the record is written
	close(g.open)
	res := result(t, moving)
	require.NotNil(t, res.Err)
	assert.True(t, res.Redirect, "passed on to the new owner: %v", res.Err)

	next, _ := partWriterWith(t, st, nil, func(o *writer.Options) { o.Commands = claims }, 0, 1)
	run(t, next)
	res = send(t, next, "purchase_license", buyL("mv-1", acct, "L-mv"))
	require.Nil(t, res.Err, "the new owner decides the command its account recorded")
	assert.False(t, res.Replayed)
	other, _ := partWriterWith(t, st, nil, func(o *writer.Options) { o.Commands = claims }, 2, 3)
	run(t, other)
	res = send(t, other, "purchase_license", buyL("mv-1", elsewhere, "L-else"))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, res.Err.Code)
}

// New commands that find every record job running wait and are then recorded together, in one
// job, once a job ends; all are decided. On the previous build each round's were a job of its
// own, queued behind the others.
func TestWaitingCommandsAreRecordedTogether(t *testing.T) {
	t.Parallel()
	g, calls := newGate(), &atomic.Int32{}
	w, _ := partWriterWith(t, memstore.New(), nil, func(o *writer.Options) {
		o.Commands = gatedCommands{&memstore.CommandClaims{}, g, calls}
	}, 0, 1)
	run(t, w)
	mine, other := accountsIn(0, 12, "tog"), accountsIn(2, 1, "tog")[0]
	var pending []<-chan writer.Result
	for i, acct := range mine {
		pending = append(pending, submitted(t, w, "purchase_license", buyL("tog-"+acct, acct, "L-"+acct)))
		require.True(t, send(t, w, "purchase_license", buyL(fmt.Sprintf("tog-probe-%d", i), other, fmt.Sprintf("L-tp-%d", i))).Redirect)
	}
	close(g.open)
	for _, c := range pending {
		require.Nil(t, result(t, c).Err)
	}
	assert.Equal(t, int32(5), calls.Load(), "four jobs, then one for the eight that waited")
	assert.Equal(t, uint64(len(mine)), w.Stats().CommandClaims)
}

// A writer retired (a takeover builds the node's next writer) while a command's id is being
// recorded passes the command on to the writer that replaces it, and so does one stopped while
// a command waits for a record job; neither is answered unavailable for this writer's moment.
func TestRetiredWritersRecordingCommandIsRedirected(t *testing.T) {
	t.Parallel()
	g := newGate() // never opened: the record ends with the writer's stop
	w, _ := partWriterWith(t, memstore.New(), nil, func(o *writer.Options) {
		o.Commands = gatedCommands{&memstore.CommandClaims{}, g, nil}
	}, 0, 1)
	stop := run(t, w)
	mine, other := accountsIn(0, 5, "ret"), accountsIn(2, 1, "ret")[0]
	var pending []<-chan writer.Result
	for i, acct := range mine { // four record jobs, then one command waiting for a job
		pending = append(pending, submitted(t, w, "purchase_license", buyL("ret-"+acct, acct, "L-"+acct)))
		require.True(t, send(t, w, "purchase_license", buyL(fmt.Sprintf("ret-probe-%d", i), other, fmt.Sprintf("L-rp-%d", i))).Redirect)
	}
	w.Retire()
	stop()
	for i, c := range pending {
		res := result(t, c)
		require.NotNil(t, res.Err)
		assert.True(t, res.Redirect, "command %d passed on, not refused: %v", i, res.Err)
	}
}

// Only a decision one writer remembers records its command id: a command answered
// version_conflict (an answer about the moment) leaves the id free, so the same id then used for
// an account of another writer is decided there, as on one writer, and a remembered rejection
// or an acceptance records it. Before, the id was recorded on arrival and the second use was
// refused idempotency_key_reused.
func TestOnlyRememberedDecisionsRecordTheCommandID(t *testing.T) {
	t.Parallel()
	st, claims := memstore.New(), &memstore.CommandClaims{}
	withClaims := func(o *writer.Options) { o.Commands = claims }
	a0, a2 := accountsIn(0, 1, "rd")[0], accountsIn(2, 1, "rd")[0]
	w1, _ := partWriterWith(t, st, nil, withClaims, 0, 1)
	w2, _ := partWriterWith(t, st, nil, withClaims, 2, 3)
	run(t, w1)
	run(t, w2)

	stale := buyL("rd-1", a0, "L-rd-a0")
	stale["expected_version"] = 7
	res := sendAs(t, w1, "purchase_license", stale)
	require.NotNil(t, res.Err)
	require.Equal(t, ledger.CodeVersionConflict, res.Err.Code)
	assert.Zero(t, claims.Asked(), "a version conflict records nothing")

	res = send(t, w2, "purchase_license", buyL("rd-1", a2, "L-rd-a2"))
	require.Nil(t, res.Err, "the id is still free: decided for the other writer's account")
	assert.Equal(t, 1, claims.Asked())
	res = send(t, w1, "purchase_license", buyL("rd-1", a0, "L-rd-a0"))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, res.Err.Code, "now held by the account it was accepted for")
}
