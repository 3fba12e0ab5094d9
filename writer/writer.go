package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Clock tells the writer the time; tests inject a settable one.
type Clock interface {
	Now() time.Time
}

// Defaults of Options.
const (
	DefaultQueueSize     = 65536
	DefaultMaxBatch      = 1000
	DefaultMaxAttempts   = 5
	DefaultSweepInterval = time.Second
	// DefaultMaxInflight is 1: nats-server processes a stream's atomic batches one after another
	// and pays a fixed cost per batch (a staging file store and several fsyncs for R1 file
	// storage), so fewer, larger batches beat overlapping smaller ones. Measured with the load
	// tool at 256 clients: 1 in flight ~95 commands per append and ~7,100 accepted/s; 4 in flight
	// ~41 per append and ~4,600/s.
	DefaultMaxInflight = 1
	DefaultPipelineMin = 32
	// DefaultLinger is how long, at most, a round waits after an append is acknowledged for the
	// commands its replies set off. Without it the clients answered by round k miss round k+1 by
	// the reply's round trip (the next round starts the moment k ends), so under load the clients
	// split into two cohorts answered every other round, each round half full. Measured with the
	// load tool at 64 clients: see BENCHMARKS.md.
	DefaultLinger = 5 * time.Millisecond
	// lingerEnough is a batch that already pays off nats-server's fixed cost per atomic batch
	// (a few milliseconds, against well under 0.1 ms a message): with that many requests
	// waiting, a round starts at once. At 256 clients, where ~110 requests wait as an append
	// ends, lingering for the whole cohort measured 8.4-8.8k commands/s against 8.6-9.3k with no
	// linger (two interleaved pairs; the difference is near this machine's noise).
	lingerEnough = 64
	// maxSweep bounds the AdvanceTime requests one sweep makes.
	maxSweep = 1000
	// maxRound bounds the requests one round considers, deferred ones included.
	maxRound = 8192
	// timeCommandPrefix marks command ids the writer makes for itself; clients cannot use it.
	timeCommandPrefix = "$time:"
)

// ErrBusy is returned by Submit when the queue is full or the writer has stopped.
var ErrBusy = errors.New("writer busy or stopped")

// Options configure a Writer. Store, Clock and NewID are required.
type Options struct {
	Store         ledger.Store
	Rules         ledger.Rules
	Clock         Clock
	NewID         func() string
	Log           zerolog.Logger
	QueueSize     int
	MaxBatch      int
	MaxAttempts   int
	SweepInterval time.Duration
	// MaxInflight is how many appends may be in flight at once (on disjoint accounts).
	MaxInflight int
	// Rejections, when set, makes business rejections durable: each is written to this log
	// before it is sent, and Load reads it back.
	Rejections RejectionLog
	// RejectionsRemembered bounds the rejected command ids kept for idempotent replies.
	RejectionsRemembered int
	// Holds, when set, names the accounts this writer holds: Load folds only their events (and
	// their remembered rejections). Nil holds every account (a node that owns every partition).
	Holds func(accountID string) bool
	// Owner, when set, says which accounts the writer may decide for at this moment (the node
	// holds their partition's lease); a request on any other account is answered with
	// Result.Redirect, and nothing is appended for it. Nil owns every account.
	Owner Ownership
	// Snapshots, when set, receives a snapshot every SnapshotEvery events and at shutdown, and
	// Load starts from the newest one.
	Snapshots     SnapshotStore
	SnapshotEvery uint64
	// Partitions, when its Count is set, makes a writer that holds some of the partitions keep
	// one snapshot per partition, and load each partition it holds from its own (partsnap.go).
	Partitions Partitions
	// PipelineMin is how many waiting requests justify starting an append while another is
	// still in flight; below it the writer lets requests gather into the next, larger batch.
	PipelineMin int
	// Linger bounds the wait after an append for as many requests as it answered (DefaultLinger;
	// negative: never wait). An idle writer never waits: it only lingers while fewer requests are
	// queued than the last append answered.
	Linger time.Duration
	// Subscriptions, when set, is the claim every node checks and moves before linking a
	// marketplace subscription (subclaims.go); nil when one writer writes every account.
	Subscriptions SubscriptionClaims
	// Fences, when set, gives the partition fence each append must carry (the ownership records
	// the server's node wrote when it took the partitions over; fence.go), and hears of a
	// partition whose fence moved. Nil: appends carry no fence (one writer writes everything).
	Fences Fences
	// Claims, when set, reserves globally unique ids in a store shared with other ledger
	// processes before they are appended (cluster.go); nil in a single-process deployment.
	Claims IDClaims
	// Commands, when set, records each new command's command_id for its account in a store
	// shared with other ledger processes, before it is decided, while this writer does not own
	// every partition or always (RecordEveryCommand; commandclaims.go); nil: none (a writer
	// alone on its store).
	Commands CommandClaims
	// RecordEveryCommand makes the writer record every new command's command_id in Commands, also
	// while it owns every partition: set where other ledger processes may share the store (a
	// cluster node, or a process on a NATS server it does not embed). A node that owns everything
	// now (alone at the cluster's start, or while the others restart) gives partitions away later,
	// and a command it decided unrecorded could then be decided again for an account of those.
	RecordEveryCommand bool
}

// Ownership says which accounts this writer may decide for now (partition.Keeper through the
// server: the node holds the lease of the account's partition). An Ownership may also be a
// FencedOwner (fenced.go) and a PartitionOwner (partsnap.go).
type Ownership interface {
	// Owns reports whether the writer may decide for the account now, with any answer.
	Owns(accountID string) bool
	// OwnsEverything reports whether this writer owns every partition now: no other node then
	// creates unique ids, so their reservation (Claims) can be skipped. A partition it gives up
	// is drained first, so a node that takes it over loads every id this writer appended.
	OwnsEverything() bool
}

// Partitions is what a writer knows of the store's partitions.
type Partitions struct {
	// Count is the store's partition count (0: none known; snapshots then cover every account).
	Count int
	// Held lists the partitions the writer loads, the ones Holds accepts (nil: every one).
	Held []int
}

// PartitionOwner is implemented by an Ownership that can say whether the writer still owns a
// partition in the tenure it loaded; a writer snapshots only such partitions (partsnap.go).
type PartitionOwner interface {
	OwnsPartition(p int) bool
}

// Stats are the writer's running totals, for metrics and the load tool.
type Stats struct {
	Appends       uint64 `json:"appends"`
	Records       uint64 `json:"records"`
	Commands      uint64 `json:"commands_appended"`
	AppendMicros  uint64 `json:"append_micros_total"`
	FailedAppends uint64 `json:"failed_appends"`
	Retried       uint64 `json:"commands_retried"`
	Replayed      uint64 `json:"idempotent_replays"`
	// ReadBack counts replays whose record was read back from the stream (idempotency.go).
	ReadBack uint64 `json:"idempotency_read_back"`
	// RejectionReadBack counts replays of a rejection read back from the rejection log
	// (rejcompact.go).
	RejectionReadBack uint64 `json:"rejection_read_back"`
	// RejectionsPruned counts compact rejections dropped because the rejection log no longer
	// holds their message (past its retention: rejcompact.go).
	RejectionsPruned uint64 `json:"rejections_pruned"`
	// Revocations counts rejections stored but never answered that were revoked in the log, and
	// RevocationsFailed those whose revocation could not be written (rejections.go).
	Revocations       uint64 `json:"rejections_revoked"`
	RevocationsFailed uint64 `json:"rejection_revocations_failed"`
	// MarkedBroken counts accounts marked broken on the projector's report (marks.go), and
	// MarksDropped the reports dropped because maxMarks were waiting.
	MarkedBroken uint64 `json:"accounts_marked_broken"`
	MarksDropped uint64 `json:"broken_marks_dropped"`
	// CommandClaims counts command ids recorded in the shared store before their commands were
	// decided (commandclaims.go).
	CommandClaims uint64 `json:"command_ids_recorded"`
}

// Writer owns all account state and is the only goroutine that appends events. Its state is in a
// few parts with one job each (doc.go has the map); the fields after them are the run loop's own.
type Writer struct {
	stats struct {
		appends, records, commands, appendMicros, failed, retried, replayed, readBack atomic.Uint64
		marked, marksDropped, rejReadBack, rejPruned, revoked, revokeFailed           atomic.Uint64
		commandClaims                                                                 atomic.Uint64
	}
	opts Options
	// apart reads the held partitions without the others' (nil: the store keeps them together;
	// partread.go).
	apart    ledger.PartitionReader
	queue    chan *request
	submitMu sync.RWMutex
	stopped  chan struct{}
	closed   atomic.Bool
	// retiring is set by Retire: requests still queued at shutdown are redirected, not refused.
	retiring atomic.Bool
	head     atomic.Uint64

	// cache holds the accounts of the held partitions and the holders of unique ids (cache.go).
	cache accountCache
	// idem remembers the commands answered, accepted and rejected (idempotency.go).
	idem idempotency
	// flight is the bookkeeping of the appends in flight (inflight.go).
	flight inFlight
	// batching decides when rounds start (batching.go), from flight.last among others.
	batching batching
	// snap is the snapshot bookkeeping: when the next is due, the save and encoding in flight
	// (snapshotter.go).
	snap snapshotter
	// due schedules the expiry processor (due.go).
	due dueHeap
	// side runs the store calls beside the loop (side.go, beside.go).
	side *sideWork

	// redecided counts sweeps turned into their requests; the run loop treats a change as
	// progress even when a sweep became exactly one request.
	redecided uint64
	// claimed are the holders of unique ids the claims store has told of (claims.go).
	claimed map[string]string
	// commandJobs counts the side jobs recording command ids now; unrecorded are the new
	// commands waiting for one of them to end (commandclaims.go).
	commandJobs int
	unrecorded  []*request
	// toRecord are the commands of the round being launched whose command ids are recorded at
	// its end; roundOwns caches OwnsEverything for it (0: not asked yet, 1: yes, -1: no).
	toRecord  []*request
	roundOwns int8
	// subHeld maps the subscription key and the account of each link or unlink whose store I/O
	// runs beside the loop to its request (substep.go); foreignAppends counts the appends that
	// landed on accounts of other partitions (a subscription move's side), which invalidate the
	// accounts such a step read.
	subHeld        map[string]*request
	foreignAppends uint64
	// marks are the breaks the projector reported (MarkBroken, marks.go).
	marks chan brokenMark
}

// account is the writer's in-memory copy of one account.
type account struct {
	state ledger.Account
	head  uint64
	hash  string
	stale bool
	// broken is set when the stored history cannot be continued (history.go); the account takes
	// no commands and is never appended to.
	broken *historyBreak
	// trusted is the position up to which the writer has verified the account's stored records
	// without a gap: folded by a load or re-read (nextEvent), or appended with its version check on
	// a trusted head. An append that carried the partition fence instead (fence.go) and a snapshot
	// restore leave it where it is: the projector's report of a break above it is believed.
	trusted uint64
	// nextDue is when the account next has renewals or expiries due (zero: never); due.go.
	nextDue time.Time
	// foreign marks an account another node writes, read for one subscription move only.
	foreign bool
	// fromSnap marks an account restored from a snapshot that no stored event has continued yet.
	fromSnap bool
	// ownGen is the snapshot generation since whose capture the state's maps are the writer's own
	// (snapcapture.go: ownState).
	ownGen uint64
}

// New checks the options and returns a writer that must be Loaded, then Run.
func New(o Options) (*Writer, error) {
	if o.Store == nil || o.Clock == nil || o.NewID == nil {
		return nil, errors.New("writer: Store, Clock and NewID are required")
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxBatch <= 0 || o.MaxBatch > 1000 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.RejectionsRemembered <= 0 {
		o.RejectionsRemembered = DefaultRejectionsRemembered
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.PipelineMin <= 0 {
		o.PipelineMin = DefaultPipelineMin
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	cache, err := newAccountCache(o.Partitions)
	if err != nil {
		return nil, err
	}
	return &Writer{
		opts:     o,
		apart:    apartReader(o.Store),
		queue:    make(chan *request, o.QueueSize),
		stopped:  make(chan struct{}),
		cache:    cache,
		idem:     idempotency{accepted: map[string]*commandRecord{}, rejected: map[string]*rejection{}},
		flight:   newInFlight(o.MaxInflight),
		batching: batching{linger: o.Linger, maxInflight: o.MaxInflight, pipelineMin: o.PipelineMin},
		snap:     snapshotter{every: o.SnapshotEvery},
		side:     newSideWork(),
		claimed:  map[string]string{},
		subHeld:  map[string]*request{},
		marks:    make(chan brokenMark, maxMarks),
	}, nil
}

// EachAccount calls f with a copy of every account's state; use it before Run or after Run has
// stopped (tests compare a restored writer with the one that wrote).
func (w *Writer) EachAccount(f func(id string, a ledger.Account)) {
	for id, a := range w.cache.accounts {
		if a.broken == nil && !a.stale {
			f(id, a.state.Clone())
		}
	}
}

// Plus sums two writers' totals: a node's metrics count the writers of its earlier tenures too.
func (s Stats) Plus(b Stats) Stats {
	return Stats{Appends: s.Appends + b.Appends, Records: s.Records + b.Records, Commands: s.Commands + b.Commands,
		AppendMicros: s.AppendMicros + b.AppendMicros, FailedAppends: s.FailedAppends + b.FailedAppends,
		Retried: s.Retried + b.Retried, Replayed: s.Replayed + b.Replayed, ReadBack: s.ReadBack + b.ReadBack,
		RejectionReadBack: s.RejectionReadBack + b.RejectionReadBack, RejectionsPruned: s.RejectionsPruned + b.RejectionsPruned,
		Revocations: s.Revocations + b.Revocations, RevocationsFailed: s.RevocationsFailed + b.RevocationsFailed,
		MarkedBroken: s.MarkedBroken + b.MarkedBroken, MarksDropped: s.MarksDropped + b.MarksDropped,
		CommandClaims: s.CommandClaims + b.CommandClaims}
}

// Stats returns the running totals.
func (w *Writer) Stats() Stats {
	s := &w.stats
	return Stats{
		Appends: s.appends.Load(), Records: s.records.Load(), Commands: s.commands.Load(),
		AppendMicros: s.appendMicros.Load(), FailedAppends: s.failed.Load(), Retried: s.retried.Load(),
		Replayed: s.replayed.Load(), ReadBack: s.readBack.Load(), RejectionReadBack: s.rejReadBack.Load(),
		RejectionsPruned: s.rejPruned.Load(), Revocations: s.revoked.Load(), RevocationsFailed: s.revokeFailed.Load(),
		MarkedBroken: s.marked.Load(), MarksDropped: s.marksDropped.Load(), CommandClaims: s.commandClaims.Load(),
	}
}

// Head is the last stream position the writer has committed or loaded.
func (w *Writer) Head() uint64 { return w.head.Load() }

// Load restores the newest snapshot and folds the rest of the store into memory; call it once
// before Run.
func (w *Writer) Load(ctx context.Context) error { return w.load(ctx, false) }

// Preload is Load for a writer whose partitions' ownership records are written meanwhile (a
// takeover fences and loads at once, server/partitions.go): it reads the store without waiting
// for the stream's leader (ledger.NearReader: a replica's copy while the leader does not answer),
// which the fence does wait for (for an election when the leader died), and leaves the rejection log, and the
// re-read of accounts its snapshot missed events of, to CatchUp.
// CatchUp must follow, once the ownership records are written, and before Run. ErrBehind: the
// replica is behind the snapshot restored; the writer is then unusable (load a new one).
func (w *Writer) Preload(ctx context.Context) error { return w.load(ctx, true) }

// ErrBehind is Preload's answer when the replica it read holds less than the snapshot it restored,
// or does not hold the message at a snapshot's head yet (snapident.go).
var ErrBehind = errors.New("the replica read is behind the writer snapshot")

func (w *Writer) load(ctx context.Context, near bool) error {
	start := time.Now()
	rp, err := w.loadSnapshot(ctx, near)
	if err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	snapDone := time.Now()
	read := 0
	fold := func(r ledger.Record) error {
		read++
		if !rp.skip(r) { // a partition's records up to its snapshot's head are in it already
			w.apply(r)
		}
		return nil
	}
	readFrom := w.readHeld
	if near {
		readFrom = w.readNear
	}
	head, err := readFrom(ctx, rp.from, fold)
	if err != nil {
		return fmt.Errorf("load accounts: %w", err)
	}
	if head < rp.maxHead && near {
		return fmt.Errorf("load accounts up to position %d, snapshot at %d: %w", head, rp.maxHead, ErrBehind)
	}
	if head < rp.maxHead {
		// The stream is behind the snapshot (it was recreated): the snapshot describes another history.
		w.opts.Log.Warn().Uint64("snapshot", rp.maxHead).Uint64("stream_head", head).Msg("snapshot is ahead of the stream; replaying from the start")
		// Everything the snapshot restored goes, its remembered rejections and rejection-log
		// position too: the load is then one without a snapshot (loadRejections reads the log
		// from its start).
		w.cache.reset(0)
		w.idem = idempotency{accepted: map[string]*commandRecord{}, rejected: map[string]*rejection{}}
		w.snap.legacy.name = ""
		w.snap.head = 0
		rp = &replayPlan{from: 1}
		if head, err = w.readHeld(ctx, 1, fold); err != nil {
			return fmt.Errorf("load accounts: %w", err)
		}
	}
	w.head.Store(head)
	if !near {
		// A near load's suspects are re-read by CatchUp, after its read: the leader's copy of an
		// account may reach past the replica's last position, and a re-read here would fold it
		// again in CatchUp, and move the head past the other accounts' events CatchUp reads.
		w.rereadSuspects(ctx)
	}
	w.rescheduleAll()
	w.compactCommands()
	w.hintVersions()
	readDone := time.Now()
	if !near {
		if err := w.loadRejections(ctx); err != nil {
			return err
		}
	}
	// One line per load: a takeover's time splits into these phases (docs/OPERATIONS.md).
	w.opts.Log.Info().Uint64("from", rp.from).Uint64("head", head).Int("records_read", read).Int("accounts", len(w.cache.accounts)).
		Int("partitions", len(w.heldPartitions())).Bool("near", near).
		Dur("snapshot", snapDone.Sub(start)).Dur("read", readDone.Sub(snapDone)).Dur("rejections", time.Since(readDone)).
		Msg("writer loaded")
	for id, a := range w.cache.accounts {
		if a.broken != nil {
			w.opts.Log.Error().Str("account_id", id).Err(a.broken).Msg("account history broken; its commands will be refused (history_broken)")
		}
	}
	return nil
}

// hintVersions tells a store that maps versions to positions of its own where every account
// loaded stands (ledger.VersionHints), so that its first append after a restart or a takeover
// does not cost a read of its last message first.
func (w *Writer) hintVersions() {
	vh, ok := w.opts.Store.(ledger.VersionHints)
	if !ok {
		return
	}
	for id, a := range w.cache.accounts {
		if a.stale || a.foreign || a.broken != nil {
			continue
		}
		vh.HintVersion(id, a.state.Version, a.head)
	}
}

// rereadSuspects re-reads the accounts restored from a snapshot whose next event did not continue
// them: another node appended to them (the holder's side of a subscription move) below the
// snapshot's head. One that cannot be read now stays stale and is re-read before its next command.
// The writer's head stays where the load's read ended: a re-read may reach past it (the node's
// running writer appends meanwhile, or the load read a lagging replica), and CatchUp must still
// read the other accounts' records from there (apply passes over the re-read account's).
func (w *Writer) rereadSuspects(ctx context.Context) {
	head := w.head.Load()
	for _, id := range w.cache.takeSuspects() {
		if err := w.reload(ctx, id); err != nil {
			w.opts.Log.Warn().Err(err).Str("account_id", id).Msg("re-reading an account its snapshot missed events of")
		}
	}
	w.head.Store(head)
}

// apply folds one stored record into the in-memory state (load and reload path).
func (w *Writer) apply(r ledger.Record) {
	if w.opts.Holds != nil && !w.opts.Holds(r.AccountID) {
		// Another partition's account: its owner holds it. Only the ids it holds are noted, so
		// that a license id or a subscription held there is known here as taken (as of the load;
		// LEDGER_IDS is the authority for ids). Most of the stream is such records, and most of
		// them carry no id: those are not decoded.
		if !mayNoteForeign(r.Data) {
			return
		}
		if ev, err := events.Decode(r.Data); err == nil && ev.AccountID == r.AccountID {
			w.cache.own(r.AccountID, ev.Data)
			w.cache.noteForeignSubscription(r.AccountID, ev.Data)
		}
		return
	}
	a := w.cache.accounts[r.AccountID]
	if a == nil {
		a = &account{state: ledger.NewAccount(r.AccountID)}
		w.cache.accounts[r.AccountID] = a
	}
	if a.stale {
		return // re-read in full (rereadSuspects, or before its next command)
	}
	if r.Position <= a.head {
		return // folded already: the account was re-read past the position a catch-up reads from
	}
	prevPosition := a.head
	a.head = r.Position
	if a.broken != nil {
		return
	}
	ev, brk := nextEvent(a, prevPosition, r) // history.go
	if brk != nil && a.fromSnap {
		a.stale, a.fromSnap = true, false // the snapshot missed an event of it: rereadSuspects
		w.cache.suspect(r.AccountID)
		return
	}
	a.fromSnap = false
	if brk != nil {
		a.broken = brk
		return
	}
	if a.trusted == prevPosition {
		a.trusted = r.Position
	}
	ev.Position = r.Position
	w.ownState(a)
	a.state = ledger.Evolve(a.state, ev)
	a.hash = ev.Hash
	w.cache.own(r.AccountID, ev.Data)
	if _, ok := ClientCommandOf(ev); !ok {
		return
	}
	rec := w.idem.accepted[ev.CommandID]
	switch {
	case rec == nil || rec.accountID != r.AccountID:
		rec = &commandRecord{accountID: r.AccountID, bodyHash: ev.CommandHash, result: Result{AccountID: r.AccountID}}
		w.idem.accepted[ev.CommandID] = rec
	case len(rec.result.Events) > 0 && rec.result.Events[len(rec.result.Events)-1].Position >= r.Position:
		return // the account is being re-read: this event is in the record already
	}
	rec.result.Version, rec.result.Position = ev.Version, r.Position
	rec.result.Events = append(rec.result.Events, EventRef{Type: ev.Type, Version: ev.Version, Position: r.Position})
}

// ClientCommandOf is the command_id of the client's command that appended ev to its account, and
// false for an event without one and for the writer's own: a time command's, and the former
// holder's side of a subscription move (isMoveSideEvent). These are the command ids a writer
// remembers for the account, and those `command-ids record` records for it.
func ClientCommandOf(ev events.Event) (string, bool) {
	if ev.CommandID == "" || isTimeCommand(ev.CommandID) || isMoveSideEvent(ev) {
		return "", false
	}
	return ev.CommandID, true
}

// isMoveSideEvent reports the former holder's event of a subscription move: it carries the move's
// command_id, but the command (and its reply) belongs to the account the subscription moved to.
func isMoveSideEvent(ev events.Event) bool {
	u, ok := ev.Data.(events.SubscriptionUnlinked)
	return ok && u.Reason == events.UnlinkMoved
}

func isTimeCommand(id string) bool {
	return len(id) >= len(timeCommandPrefix) && id[:len(timeCommandPrefix)] == timeCommandPrefix
}

// ReservedCommandID reports whether a client command id collides with the writer's own ids.
func ReservedCommandID(id string) bool { return len(id) > 0 && id[0] == '$' }

// createdIDs lists the ids that must be unique across all accounts.
// foreignNoted are the event types apply notes for an account of a partition the writer does not
// hold (createdIDs, ownSubscription, noteForeignSubscription), as their stored "type" member.
var foreignNoted = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range []string{events.TypeLicensePurchased, events.TypeContractUpgraded,
		events.TypePaygContractPurchased, events.TypeSubscriptionLinked, events.TypeSubscriptionUnlinked} {
		m[t] = true
	}
	return m
}()

// typeMember is how every stored envelope writes its type (both hash rules write compact JSON).
var typeMember = []byte(`"type":"`)

// mayNoteForeign reports whether a stored event may be of a type in foreignNoted, without decoding
// it: a load reads every record of the stream after the oldest snapshot and decoded each of the
// other partitions' records only to find the few that carry ids. A false positive (a payload
// member that reads the same) only costs the decode; a record whose type member is written
// otherwise (not by this ledger) is decoded too, since its type is then not found at all.
func mayNoteForeign(data []byte) bool {
	found := false
	for rest := data; ; {
		i := bytes.Index(rest, typeMember)
		if i < 0 {
			return !found
		}
		rest = rest[i+len(typeMember):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return true
		}
		if foreignNoted[string(rest[:end])] {
			return true
		}
		found = true
		rest = rest[end:]
	}
}

func createdIDs(p events.Payload) []string {
	switch e := p.(type) {
	case events.LicensePurchased:
		return []string{"license:" + e.LicenseID}
	case events.ContractUpgraded:
		if e.ItemID != "" {
			return []string{"license:" + e.ItemID}
		}
	case events.PaygContractPurchased:
		return []string{"payg:" + e.ContractID}
	}
	return nil
}

// owns reports whether the writer may decide for the account now.
func (w *Writer) owns(accountID string) bool {
	return w.opts.Owner == nil || w.opts.Owner.Owns(accountID)
}

// redirect answers a request this writer may not decide: its partition is owned elsewhere.
func (w *Writer) redirect(r *request) {
	w.endStep(r) // substep.go
	if r.internal && r.AccountID != "" {
		w.cache.advanced(r.AccountID)
	}
	if r.barrier != nil {
		if r.saved != nil {
			close(r.saved)
		}
		close(r.barrier)
		return
	}
	if r.Reply != nil {
		r.Reply(Result{AccountID: r.AccountID, Redirect: true, Err: ledger.Reject(ledger.CodeUnavailable,
			"this node does not write account %s now (its partition is moving); retry with the same command_id", r.AccountID)})
	}
}

// Retire makes the writer redirect, rather than refuse, the requests still queued when Run
// stops: another writer of this node (loaded with more partitions) takes over from it.
func (w *Writer) Retire() { w.retiring.Store(true) }

// Retired reports whether Retire was called.
func (w *Writer) Retired() bool { return w.retiring.Load() }

// Barrier returns once every append in flight when it was called has finished (a partition
// about to be handed over has nothing in flight after it), or when ctx ends.
func (w *Writer) Barrier(ctx context.Context) error {
	done := make(chan struct{})
	if err := w.enqueue(&request{internal: true, barrier: done}); err != nil {
		select {
		case <-w.stopped:
			return nil // stopped: nothing in flight
		default:
			return err
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CatchUp folds what the store holds beyond the writer's head (another writer of this node
// appended while this one loaded); call it after Load and before Run. After Preload it also
// re-reads the accounts a restored snapshot missed events of (rereadSuspects), once the rest of
// the stream is folded.
func (w *Writer) CatchUp(ctx context.Context) error {
	head, err := w.readHeld(ctx, w.head.Load()+1, func(r ledger.Record) error {
		w.apply(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if head > w.head.Load() {
		w.head.Store(head)
	}
	w.rereadSuspects(ctx) // a Preload's (load)
	w.rescheduleAll()
	return w.loadRejections(ctx)
}

// Submit hands a command to the writer without blocking (the command service's port,
// service.Submitter); r.Reply is called once with its outcome. ErrBusy: the queue is full or the
// writer is stopping, and Reply will not be called.
func (w *Writer) Submit(r submit.Request) error {
	if w.closed.Load() {
		return ErrBusy // without allocating: a stopping writer refuses every request
	}
	return w.enqueue(&request{Request: r})
}

// enqueue hands a request, the command service's or the writer's own, to Run.
func (w *Writer) enqueue(r *request) error {
	// The read lock spans the check and the send, so shutdown (which closes under the write
	// lock, then drains) cannot drain the queue between them and leave r unanswered.
	w.submitMu.RLock()
	defer w.submitMu.RUnlock()
	if w.closed.Load() {
		return ErrBusy
	}
	select {
	case w.queue <- r:
		return nil
	default:
		return ErrBusy
	}
}

// Sweep asks the writer to bring every account up to date with the clock now.
func (w *Writer) Sweep() {
	select {
	case w.queue <- &request{internal: true, sweep: true}:
	default:
	}
}

// Run processes requests until ctx ends, then waits for the appends in flight and answers
// everything still queued with unavailable.
func (w *Writer) Run(ctx context.Context) {
	defer close(w.stopped)
	tick := time.NewTicker(w.opts.SweepInterval)
	defer tick.Stop()
	appendCtx := context.WithoutCancel(ctx)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	var carry []*request
	for {
		// (While a snapshot is encoded beside the loop the next is not due: rounds go on.)
		// (Nor while the stale accounts it waits for are re-read beside it: rereadStale.)
		snapshotDue := w.opts.Snapshots != nil && w.snap.due(w.head.Load(), w.cache.rereading())
		if snapshotDue && w.flight.n == 0 && !w.side.busy() {
			w.snapshotNow(appendCtx, false)
			snapshotDue = false
		}
		before, redecided := len(carry), w.redecided
		launched := false
		start, wait := w.batching.next(roundInputs{now: time.Now(), waiting: len(carry), inflight: w.flight.n,
			snapshotDue: snapshotDue, last: w.flight.last})
		if wait > 0 {
			linger.Reset(wait)
		} else if start {
			n := w.flight.n
			carry = w.launch(appendCtx, carry)
			launched = w.flight.n > n
		}
		if launched || len(carry) != before || w.redecided != redecided {
			carry = w.gather(appendCtx, carry)
			continue
		}
		if ctx.Err() != nil {
			for w.flight.n > 0 {
				carry = append(w.finish(appendCtx, <-w.flight.acks), carry...)
			}
			w.side.stop() // the side work still running ends soon; its requests are answered below
			for w.side.busy() {
				carry = append(carry, w.side.finished(<-w.side.done)...)
			}
			w.shutdown(carry)
			if !w.retiring.Load() {
				// (A retired writer is replaced by a newer one of this node that is waiting for it
				// to stop: that one snapshots the same partitions soon enough; a save in flight
				// ends by itself.)
				if w.snap.behind(w.head.Load(), w.idem.sinceSnap) {
					w.snapshotNow(appendCtx, true)
				}
				w.snap.saveRunning(true) // a hand-over's save, which snapshotNow may not have waited for
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			carry = append(carry, &request{internal: true, sweep: true})
		case <-linger.C:
		case d := <-w.flight.acks:
			carry = append(w.finish(appendCtx, d), carry...)
		case apply := <-w.side.done:
			carry = append(w.side.finished(apply), carry...)
		case r := <-w.queue:
			carry = append(carry, r)
		case m := <-w.marks:
			w.markBroken(m)
		}
		carry = w.gather(appendCtx, carry)
	}
}

// gather takes whatever is already waiting, without blocking: finished appends first, then
// queued requests up to the round bound.
func (w *Writer) gather(ctx context.Context, carry []*request) []*request {
	for {
		select {
		case d := <-w.flight.acks:
			carry = append(w.finish(ctx, d), carry...)
			continue
		case apply := <-w.side.done:
			carry = append(w.side.finished(apply), carry...)
			continue
		default:
		}
		break
	}
	w.drainMarks() // marks.go
	for len(carry) < maxRound {
		select {
		case r := <-w.queue:
			carry = append(carry, r)
		default:
			return carry
		}
	}
	return carry
}

// Stopped is closed when Run has returned.
func (w *Writer) Stopped() <-chan struct{} { return w.stopped }

func (w *Writer) shutdown(carry []*request) {
	w.submitMu.Lock()
	w.closed.Store(true)
	w.submitMu.Unlock()
	for {
		for _, r := range carry {
			if w.retiring.Load() || r.barrier != nil {
				w.redirect(r)
				continue
			}
			w.reject(r, ledger.Reject(ledger.CodeUnavailable, "ledger is shutting down; retry with the same command_id"))
		}
		select {
		case r := <-w.queue:
			carry = []*request{r}
		default:
			return
		}
	}
}

func (w *Writer) reject(r *request, err *ledger.Error) {
	w.endStep(r) // substep.go
	if err.Code == ledger.CodeUnavailable && w.retiring.Load() && !r.internal && r.Reply != nil {
		// A retired writer's store call was cut short by its stop (a claim, a re-read): that
		// is an answer about this writer's moment, not the command's. The writer that replaces
		// it, or the partition's new owner, decides the command instead.
		w.redirect(r)
		return
	}
	w.rememberRejection(r, err)
	if r.Reply != nil {
		r.Reply(Result{AccountID: r.AccountID, Err: err})
	}
	if r.internal && r.AccountID != "" {
		w.cache.advanced(r.AccountID)
	}
}

// asError turns any decision error into a domain error; anything unexpected is internal.
func asError(err error) *ledger.Error {
	var le *ledger.Error
	if errors.As(err, &le) {
		return le
	}
	return ledger.Reject(ledger.CodeInternal, "%v", err)
}

func timeCommandID(accountID string, version uint64) string {
	return timeCommandPrefix + accountID + ":" + strconv.FormatUint(version, 10)
}
