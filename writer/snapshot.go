package writer

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// SnapshotStore keeps the writer's snapshots. A snapshot is a cache: losing or refusing one
// only means replaying the stream from the start.
type SnapshotStore interface {
	Save(ctx context.Context, name string, data []byte) error
	Load(ctx context.Context, name string) ([]byte, error)
}

const (
	// snapshotName changes with snapshotMagic so an old format is never misread; an older build
	// does not find a newer snapshot and replays the stream instead. v5 adds the partition count
	// to the header and the account's partition to each compacted entry (idempotency.go); the
	// per-partition snapshots of a writer that holds only some partitions are in partsnap.go.
	snapshotName  = "writer-v5"
	snapshotMagic = "creditledger-writer-snapshot-v5\n"
	// The previous formats, still read when no v5 snapshot exists yet (the first start after an
	// upgrade), so an upgrade does not replay the whole stream. v3 lacks the compacted section;
	// v4's compacted entries name no partition.
	snapshotNameV4  = "writer-v4"
	snapshotMagicV4 = "creditledger-writer-snapshot-v4\n"
	snapshotNameV3  = "writer-v3"
	snapshotMagicV3 = "creditledger-writer-snapshot-v3\n"
	// DefaultSnapshotEvery is how many appended events trigger a snapshot.
	DefaultSnapshotEvery = 100_000
)

// accountSnap is one account in a snapshot.
type accountSnap struct {
	State  ledger.Account
	Head   uint64
	Hash   string
	Broken string
	// BrokenAt is the position where a broken account's history breaks (0 in older snapshots).
	BrokenAt uint64
}

// typeCodes numbers event types for the compact command section.
func typeCodes() ([]string, map[string]byte) {
	types := events.Types()
	sort.Strings(types)
	idx := make(map[string]byte, len(types))
	for i, t := range types {
		idx[t] = byte(i)
	}
	return types, idx
}

// ownedIDs lists the globally unique ids an account holds (the inverse of createdIDs).
func ownedIDs(a ledger.Account) []string {
	out := make([]string, 0, len(a.Licenses)+len(a.Contracts))
	for id := range a.Licenses {
		out = append(out, "license:"+id)
	}
	for id := range a.Contracts {
		out = append(out, "payg:"+id)
	}
	out = append(out, subscriptionOwned(a)...) // hook (subscriptions.go)
	return out
}

// encodeSnapshot encodes the whole state (a writer that owns every partition), on the writer
// goroutine.
func (w *Writer) encodeSnapshot() ([]byte, error) {
	w.awaitEncode()
	return w.capture(w.head.Load()).encodeWhole()
}

// encodePartitions encodes the snapshots of parts at head, on the writer goroutine.
func (w *Writer) encodePartitions(head uint64, parts []int) ([]snapObject, error) {
	w.awaitEncode()
	c := w.capture(head)
	objs, err := c.encodePartitions(parts)
	w.snap.adoptLegacy(c)
	return objs, err
}

// encodeWhole encodes the capture as one whole snapshot.
func (c *snapCapture) encodeWhole() ([]byte, error) {
	v := c.views(true, nil)[wholeView]
	if v == nil {
		v = &snapView{accts: map[string]accountSnap{}}
	}
	b := binary.AppendUvarint([]byte(snapshotMagic), uint64(c.count))
	return c.appendBody(b, v)
}

// install replaces the in-memory state with a whole snapshot's.
func (w *Writer) install(st *snapState) {
	w.cache.reset(len(st.accounts)) // (at the start of Load: nothing foreign is noted yet)
	for id, s := range st.accounts {
		a := s.account()
		w.cache.accounts[id] = a
		w.cache.ownAll(id, a)
	}
	w.idem.accepted = st.commands
	w.idem.rejected, w.idem.order, w.idem.logPos = st.rejections, st.order, st.logPos
	w.idem.orderSeq = uint64(len(st.order))
	w.idem.compacted, w.idem.rejCompact = st.compacted, st.rejCompact
	if st.parts != max(w.opts.Partitions.Count, 0) {
		for _, m := range []map[uint64]uint64{w.idem.compacted, w.idem.rejCompact} {
			for k, e := range m { // partitions of another count mean nothing here
				m[k] = e & (1<<compactPartShift - 1)
			}
		}
	}
}

// snapshotNow snapshots the state; only one save runs at a time. A writer that owns every
// partition saves one whole snapshot; one that holds some saves a snapshot of each partition it
// still owns (partsnap.go). Unless wait, the state is only captured on the writer goroutine, and
// encoded and saved beside it (snapcapture.go); with wait (the final snapshot) both are done
// before it returns.
func (w *Writer) snapshotNow(ctx context.Context, wait bool) {
	if w.opts.Snapshots == nil {
		return
	}
	whole := w.opts.Owner == nil || w.opts.Owner.OwnsEverything()
	var parts []int
	if !whole {
		// A partition this writer gave up may have been written by another node since: its copy
		// of those accounts is stale, and a snapshot of it would hide their later events from
		// whoever restores it. Only the partitions it still owns, in the tenures it loaded, are
		// saved; with no partition count known, nothing is.
		if w.opts.Partitions.Count > 0 {
			parts = w.ownedPartitions()
		}
		if len(parts) == 0 {
			w.snap.head, w.snap.soon = w.head.Load(), false
			return
		}
	}
	if w.snap.saveRunning(wait) {
		return
	}
	mode := snapBeside
	if wait {
		mode = snapWait
	}
	w.saveSnapshot(ctx, whole, parts, mode, nil)
}

// snapMode says where a snapshot is encoded and saved.
type snapMode int

const (
	// snapBeside encodes and saves beside the writer goroutine (a periodic snapshot).
	snapBeside snapMode = iota
	// snapEncode encodes on the writer goroutine and saves beside it (a hand-over).
	snapEncode
	// snapWait encodes and saves before returning (the final snapshot).
	snapWait
)

// saveSnapshot captures the state for a whole snapshot (or those of parts) on the writer
// goroutine, after the encoder in flight if any, and encodes and saves it as mode says, the save
// after the save in flight, if any; saved (if set) is closed when done.
func (w *Writer) saveSnapshot(ctx context.Context, whole bool, parts []int, mode snapMode, saved chan struct{}) {
	start := time.Now()
	w.snap.soon = false
	if mode == snapBeside {
		// A periodic snapshot waits, beside the loop, for the stale accounts' re-reads (the loop
		// takes it once they are done); commands go on meanwhile. Accounts still stale after
		// that (a re-read failed) put it off by SnapshotEvery events, like a failed freshenStale.
		stale := w.rereadStale()
		if !stale && w.cache.hasStale() {
			w.opts.Log.Warn().Msg("snapshot skipped: a stale account could not be re-read")
			w.snap.head = w.head.Load()
			stale = true
		}
		if stale {
			if saved != nil {
				close(saved)
			}
			return
		}
	}
	w.awaitEncode() // the compaction below changes what an encoder reads
	if err := w.freshenStale(ctx); err != nil {
		// A snapshot must describe every account up to its head; one left out would come back
		// empty (or unreadable) after a restore. The previous snapshot stays (a restart replays
		// more), and the next one is tried SnapshotEvery events on.
		w.opts.Log.Warn().Err(err).Msg("snapshot skipped: a stale account could not be re-read")
		w.snap.head = w.head.Load()
		if saved != nil {
			close(saved)
		}
		return
	}
	head := w.head.Load()
	w.compactCommands()
	w.pruneBeside() // the compact rejections the log dropped go soon after (rejcompact.go)
	c := w.capture(head)
	// The head is the snapshot's now; one whose encoding or save fails is retried SnapshotEvery
	// events on, as one skipped above.
	w.snap.head = head
	w.idem.sinceSnap = 0
	job := &snapSave{w: w, ctx: ctx, capture: c, whole: whole, parts: parts, saved: saved, start: start,
		paused: time.Since(start)}
	job.prev, job.done = w.snap.startSave()
	switch mode {
	case snapBeside:
		f := w.share(c)
		w.side.start(func(context.Context) func() []*request {
			job.encode()
			c.release()
			close(f.encoded)
			go job.save()
			return func() []*request { w.thaw(f); return nil }
		})
	case snapEncode:
		job.encode()
		w.snap.adoptLegacy(c)
		go job.save()
	default:
		job.encode()
		w.snap.adoptLegacy(c)
		job.save()
	}
}

// snapSave is one snapshot's encoding and save; encode and save read only the capture.
type snapSave struct {
	w       *Writer
	ctx     context.Context
	capture *snapCapture
	whole   bool
	parts   []int
	saved   chan struct{} // closed when done (nil: nobody waits)
	start   time.Time
	paused  time.Duration // the capture, on the writer goroutine
	encoded time.Duration
	objs    []snapObject
	err     error
	// prev is closed when the save before this one ends; done when this one does.
	prev, done chan struct{}
}

// encode reads the fingerprint of the message at the capture's head (snapident.go), then encodes
// the capture. The read is bounded by fingerprintTimeout, not cut short at a stop (as the save
// is not): the snapshot's head is taken already, and the final snapshot is then not taken again.
func (s *snapSave) encode() {
	if h := s.w.snap.encodeHook; h != nil {
		h()
	}
	s.capture.fingerprint, s.err = headFingerprint(s.ctx, s.w.opts.Store, s.capture.head)
	if s.err == nil {
		s.objs, s.err = s.capture.encode(s.whole, s.parts)
	}
	s.encoded = time.Since(s.start)
}

// save saves the encoded objects after the save before, if any.
func (s *snapSave) save() {
	defer close(s.done)
	if s.saved != nil {
		defer close(s.saved)
	}
	if s.prev != nil {
		<-s.prev
	}
	w, head := s.w, s.capture.head
	if s.err != nil {
		w.opts.Log.Error().Err(s.err).Uint64("position", head).Msg("snapshot encoding failed")
		return
	}
	sctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	size := 0
	for _, o := range s.objs {
		if err := w.opts.Snapshots.Save(sctx, o.name, o.data); err != nil {
			w.opts.Log.Error().Err(err).Uint64("position", head).Str("snapshot", o.name).Msg("snapshot save failed")
			return
		}
		if o.name == s.capture.legacy {
			w.snap.legacy.saved.Store(true)
		}
		size += len(o.data)
	}
	w.opts.Log.Info().Uint64("position", head).Int("bytes", size).Int("partitions", len(s.parts)).
		Dur("paused", s.paused).Dur("encode", s.encoded).Dur("total", time.Since(s.start)).Msg("snapshot saved")
}

// rereadStale starts, beside the loop, the re-read of every account a failed or uncertain append
// left stale, once per due snapshot, and reports whether it started any (the snapshot is then
// taken again when they are done: snapshotter.soon). The second time, it starts none.
func (w *Writer) rereadStale() bool {
	if w.snap.waitedForStale() {
		return false
	}
	started := false
	for id, a := range w.cache.accounts {
		if a.stale && w.cache.loading(id) == nil {
			w.rereadBeside(id)
			started = true
		}
	}
	if started {
		w.snap.deferForStale()
	}
	return started
}

// freshenStale re-reads, on the writer goroutine, the accounts a failed or uncertain append left
// stale, for the snapshots taken with nothing else to do (a hand-over, the last one at a stop); a
// periodic one has them re-read beside the loop first (rereadStale).
func (w *Writer) freshenStale(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stale []string
	for id, a := range w.cache.accounts {
		if a.stale {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		if err := w.reload(ctx, id); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
	}
	return nil
}

// loadSnapshot restores the newest usable snapshot (for a writer that holds only some
// partitions, one per partition: partsnap.go) taken on the history the store holds
// (snapident.go; near: as Preload reads, where a replica that lacks a snapshot's head is
// ErrBehind); it returns the replay plan.
func (w *Writer) loadSnapshot(ctx context.Context, near bool) (*replayPlan, error) {
	if w.opts.Snapshots == nil {
		return &replayPlan{from: 1}, nil
	}
	start := time.Now()
	if w.partitioned() {
		rp, err := w.loadPartitions(ctx, near)
		if err != nil {
			return nil, err
		}
		w.head.Store(rp.from - 1)
		w.snap.head = rp.from - 1
		w.opts.Log.Info().Uint64("from", rp.from).Uint64("newest", rp.maxHead).Dur("took", time.Since(start)).
			Int("accounts", len(w.cache.accounts)).Int("commands", len(w.idem.accepted)).Int("commands_compacted", len(w.idem.compacted)).
			Msg("partition snapshots restored")
		return rp, nil
	}
	st, err := w.fetchWholeOf(ctx, near)
	if err != nil {
		return nil, err
	}
	if st == nil && w.opts.Partitions.Count > 0 {
		// No whole snapshot (a cluster that shrank to this node): the partitions' own, if any.
		rp, err := w.loadPartitions(ctx, near)
		if err != nil {
			return nil, err
		}
		w.head.Store(rp.from - 1)
		w.snap.head = 0 // a whole snapshot soon
		return rp, nil
	}
	if st == nil {
		return &replayPlan{from: 1}, nil
	}
	w.install(st)
	w.head.Store(st.head)
	w.snap.head = st.head
	if st.format < 5 {
		w.snap.head = 0 // write the current format soon (at once past SnapshotEvery, else at shutdown)
	}
	w.opts.Log.Info().Uint64("position", st.head).Int("bytes", st.bytes).Dur("took", time.Since(start)).
		Int("accounts", len(w.cache.accounts)).Int("commands", len(w.idem.accepted)).
		Int("commands_compacted", len(w.idem.compacted)).Msg("snapshot restored")
	return &replayPlan{from: st.head + 1, maxHead: st.head}, nil
}
