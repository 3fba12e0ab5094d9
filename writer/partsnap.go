package writer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// Snapshots per partition. A writer that holds only some partitions (a cluster node) saves, for
// each partition p it still owns in the tenure it loaded, a snapshot of p at its head H: p's
// accounts, the idempotency records and remembered rejections of p's accounts, and p's compacted
// idempotency entries and rejections. It is valid because p's owner is p's only writer since its load, so it
// holds every event of p's accounts up to H. A writer that loads a set of partitions restores
// each from its newest snapshot (falling back to the whole snapshot, which describes every
// partition at its head, then to the stream's start) and replays from the oldest of their heads,
// folding an event of p only above p's.
//
// Two more kinds of object travel with them:
//
//   - the ids of p's accounts (license, item, PAYG contract and subscription ids), small, read by
//     the loaders of every other partition: ids created while one writer owned every partition
//     were never reserved in the shared claims (claims.go), so a writer learns that another
//     partition holds them only from these lists and the events after them (apply).
//   - the legacy entries: compacted entries read from a v4 snapshot name no partition, so they
//     cannot be split. They are saved once, under a name derived from their content, and every
//     partition snapshot that relies on them names that object; a loader reads it too. Their
//     number never grows (every entry compacted since names its partition).
const (
	partitionMagic = "creditledger-writer-partition-snapshot-v5\n"
	idsMagic       = "creditledger-writer-partition-ids-v5\n"
	legacyMagic    = "creditledger-writer-legacy-entries-v5\n"
	// snapFetchParallel bounds the snapshot objects fetched at once by a load.
	snapFetchParallel = 8
)

func partitionSnapName(p int) string { return fmt.Sprintf("writer-v5-p%d", p) }
func partitionIDsName(p int) string  { return fmt.Sprintf("writer-v5-p%d-ids", p) }

// snapObject is one named object of a snapshot save.
type snapObject struct {
	name string
	data []byte
}

// partitioned reports whether the writer holds only some partitions and keeps snapshots per
// partition.
func (w *Writer) partitioned() bool {
	return w.opts.Partitions.Count > 0 && w.opts.Holds != nil
}

// ownedPartitions lists the held partitions the writer still owns in the tenure it loaded.
func (w *Writer) ownedPartitions() []int {
	po, ok := w.opts.Owner.(PartitionOwner)
	if !ok {
		return nil
	}
	var out []int
	for _, p := range w.heldPartitions() {
		if po.OwnsPartition(p) && !w.cache.isDropped(p) {
			out = append(out, p)
		}
	}
	return out
}

// heldPartitions lists the partitions the writer loaded.
func (w *Writer) heldPartitions() []int {
	if w.opts.Partitions.Held != nil {
		return w.opts.Partitions.Held
	}
	all := make([]int, w.opts.Partitions.Count)
	for p := range all {
		all[p] = p
	}
	return all
}

// handOverSave bounds how long a hand-over waits for its snapshot to be saved: past it the
// partition is handed over anyway (its next owner replays more).
const handOverSave = 2 * time.Second

// HandOver returns once nothing is in flight (as Barrier does), after snapshotting parts, the
// partitions about to be handed over (the caller vouches that this writer loaded them in the
// tenure the node still holds, and that nothing appends to them any more), so that their next
// owner replays only what follows. The save is waited for at most handOverSave; a failed or slow
// one only costs the next owner a longer replay, so it is not an error.
func (w *Writer) HandOver(ctx context.Context, parts []int) error {
	done, saved := make(chan struct{}), make(chan struct{})
	if err := w.enqueue(&request{internal: true, barrier: done, handOver: parts, saved: saved}); err != nil {
		select {
		case <-w.stopped:
			return nil // stopped: nothing in flight
		default:
			return err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTimer(handOverSave)
	defer t.Stop()
	select {
	case <-saved:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// handOverSnapshot snapshots the partitions a hand-over names (those this writer loaded), with
// nothing in flight; r.saved is closed once the save ends.
func (w *Writer) handOverSnapshot(ctx context.Context, r *request) {
	var parts []int
	for _, p := range r.handOver {
		if w.cache.keeps(p) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 || w.opts.Snapshots == nil {
		if r.saved != nil {
			close(r.saved)
		}
		return
	}
	// A writer that hands every partition over (a node that held them all stops) saves one whole
	// snapshot: what its restart, owning everything again, reads.
	whole := w.cache.holdsAll() && len(parts) == w.opts.Partitions.Count
	w.saveSnapshot(ctx, whole, parts, snapEncode, r.saved)
}

// Forget asks the writer to drop, once nothing is in flight, the accounts of partitions it no
// longer owns (their new owner writes them), with their idempotency records and compacted
// entries; the ids those accounts hold stay noted as another partition's. A partition it still
// owns is kept. It does not wait; false means the request was not queued (try again later).
func (w *Writer) Forget(parts []int) bool {
	return w.enqueue(&request{internal: true, barrier: make(chan struct{}), forget: parts}) == nil
}

// forgetPartitions drops what the writer holds of the partitions given that it no longer owns.
func (w *Writer) forgetPartitions(parts []int) {
	po, ok := w.opts.Owner.(PartitionOwner)
	if !ok || len(parts) == 0 || w.opts.Partitions.Count <= 0 {
		return
	}
	gone := map[int]bool{}
	for _, p := range parts {
		if !po.OwnsPartition(p) {
			gone[p] = true
		}
	}
	if len(gone) == 0 {
		return
	}
	w.awaitEncode()                 // the maps below are shared with a snapshot's encoder until it is done
	dropped := w.cache.forget(gone) // never snapshotted again; their ids are foreign notes now
	for id, rec := range w.idem.accepted {
		if gone[w.partitionOf(rec.accountID)] {
			delete(w.idem.accepted, id)
		}
	}
	for id, rj := range w.idem.rejected {
		if gone[w.partitionOf(rj.accountID)] && !rj.pending {
			delete(w.idem.rejected, id)
		}
	}
	for _, m := range []map[uint64]uint64{w.idem.compacted, w.idem.rejCompact} {
		for k, e := range m {
			if p, known := entryPartition(e); known && gone[p] {
				delete(m, k)
			}
		}
	}
	w.opts.Log.Info().Int("partitions", len(gone)).Int("accounts", dropped).Msg("dropped the accounts of partitions handed over")
}

// encodePartitions encodes the snapshots of parts at the capture's head, with each one's list
// of ids, and the legacy entries first when they have not been saved yet (their object is named
// here the first time: c.legacy, which the writer adopts). It reads only the capture.
func (c *snapCapture) encodePartitions(parts []int) ([]snapObject, error) {
	views := c.views(false, parts)
	var objs []snapObject
	legacy := ""
	if lv := views[wholeView]; lv != nil && len(lv.entries) > 0 {
		if c.legacy == "" {
			data := appendEntries([]byte(legacyMagic), lv.entries, c.compacted)
			h := fnv.New64a()
			_, _ = h.Write(data)
			c.legacy, c.legacyData, c.legacySaved = fmt.Sprintf("writer-v5-legacy-%016x", h.Sum64()), data, false
		}
		legacy = c.legacy
		if !c.legacySaved { // saved again with every batch until one save succeeds
			objs = append(objs, snapObject{legacy, c.legacyData})
		}
	}
	for _, p := range parts {
		v := views[p]
		if v == nil {
			v = &snapView{accts: map[string]accountSnap{}}
		}
		b := binary.AppendUvarint([]byte(partitionMagic), uint64(c.count))
		b = binary.AppendUvarint(b, uint64(p))
		b = appendString(b, legacy)
		b, err := c.appendBody(b, v)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		objs = append(objs, snapObject{partitionSnapName(p), b}, snapObject{partitionIDsName(p), c.encodeIDs(p, v)})
	}
	return objs, nil
}

// encodeIDs lists the unique ids the accounts of a view hold.
func (c *snapCapture) encodeIDs(p int, v *snapView) []byte {
	var pairs [][2]string
	for id, s := range v.accts {
		for _, oid := range ownedIDs(s.State) {
			pairs = append(pairs, [2]string{oid, id})
		}
	}
	b := binary.AppendUvarint([]byte(idsMagic), uint64(c.count))
	b = binary.AppendUvarint(b, uint64(p))
	b = binary.AppendUvarint(b, c.head)
	b = binary.AppendUvarint(b, uint64(len(pairs)))
	for _, kv := range pairs {
		b = appendString(b, kv[0])
		b = appendString(b, kv[1])
	}
	// The fingerprint at head ends the list (snapident.go): an older build stops before it.
	return appendString(b, string(c.fingerprint))
}

// idList is a decoded list of ids: who holds each, at head, and the store's fingerprint at head
// when it was taken (nil: an older build's).
type idList struct {
	parts, part int
	head        uint64
	pairs       [][2]string
	fingerprint []byte
}

func decodeIDs(data []byte) (*idList, error) {
	if !strings.HasPrefix(string(data[:min(len(data), len(idsMagic))]), idsMagic) {
		return nil, errors.New("not a partition id list")
	}
	r := &snapReader{b: data[len(idsMagic):]}
	l := &idList{parts: int(r.uvarint()), part: int(r.uvarint()), head: r.uvarint()}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return nil, errors.New("partition id list truncated")
	}
	l.pairs = make([][2]string, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		l.pairs = append(l.pairs, [2]string{r.str(), r.str()})
	}
	if r.err == nil && len(r.b) > 0 {
		if fp := r.str(); fp != "" {
			l.fingerprint = []byte(fp)
		}
	}
	return l, r.err
}

func decodeLegacy(data []byte) (map[uint64]uint64, error) {
	if !strings.HasPrefix(string(data[:min(len(data), len(legacyMagic))]), legacyMagic) {
		return nil, errors.New("not a legacy entries object")
	}
	entries, _, err := decodeCompacted(data[len(legacyMagic):], 5)
	return entries, err
}

// fetchAll loads the named objects, snapFetchParallel at a time; a missing one is nil.
func (w *Writer) fetchAll(ctx context.Context, names []string) map[string][]byte {
	var mu sync.Mutex
	out := make(map[string][]byte, len(names))
	sem := make(chan struct{}, snapFetchParallel)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data, err := w.fetch(ctx, name, fetchTimeout)
			if err != nil {
				w.opts.Log.Warn().Err(err).Str("snapshot", name).Msg("snapshot unavailable")
				data = nil
			}
			mu.Lock()
			out[name] = data
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Fetch attempts: a snapshot bucket whose stream is electing a leader (a node was just killed)
// times out for a few seconds, and a read of an object that another node replaces meanwhile may
// wait for chunks that are gone; a replay from the stream's start costs far more than a retry.
const (
	fetchAttempts = 3
	fetchPause    = 500 * time.Millisecond
	// fetchTimeout bounds one attempt at a partition's object (a few MB at most).
	fetchTimeout = 5 * time.Second
)

// fetch loads one snapshot object, trying again (bounded) after an error; nil when there is none.
// timeout bounds each attempt (0: only ctx).
func (w *Writer) fetch(ctx context.Context, name string, timeout time.Duration) ([]byte, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var data []byte
		actx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, timeout)
		}
		data, err = w.opts.Snapshots.Load(actx, name)
		cancel()
		if err == nil || attempt == fetchAttempts {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(fetchPause):
		}
	}
}

// replayPlan says where a load replays from, the newest snapshot head it relies on (the stream
// must reach it) and, per partition (nil: none), the snapshot head at or below which its records
// are already in memory (for a held partition) or in the id lists (for another).
type replayPlan struct {
	from    uint64
	maxHead uint64
	parts   int
	above   []uint64
}

// skip reports whether a record is already reflected by the snapshot of its partition.
func (rp *replayPlan) skip(r ledger.Record) bool {
	return rp.above != nil && r.Position <= rp.above[ledger.PartitionOf(r.AccountID, rp.parts)]
}

// partSources are the snapshots a partitioned load restores from.
type partSources struct {
	own    map[int]*snapState // held partitions with their own snapshot
	ids    map[int]*idList    // other partitions with their own id list
	legacy map[uint64]uint64
	names  []string // the legacy objects the own snapshots rely on
	whole  *snapState
}

// loadPartitions restores the held partitions from their snapshots and the ids of the other
// partitions from their lists, passing over those taken on another history (snapident.go; near:
// as Preload reads); it returns the replay plan.
func (w *Writer) loadPartitions(ctx context.Context, near bool) (*replayPlan, error) {
	n := w.opts.Partitions.Count
	held := make([]bool, n)
	for _, p := range w.heldPartitions() {
		held[p] = true
	}
	names := make([]string, 0, n)
	for p := range n {
		switch {
		case held[p]:
			names = append(names, partitionSnapName(p))
		case w.apart == nil: // the other partitions' ids; over a store read apart, the claims hold them
			names = append(names, partitionIDsName(p))
		}
	}
	got := w.fetchAll(ctx, names)
	src := &partSources{own: map[int]*snapState{}, ids: map[int]*idList{}}
	decoded := make([]*snapState, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, snapFetchParallel)
	for p := range n {
		name := partitionIDsName(p)
		if held[p] {
			name = partitionSnapName(p)
		}
		data := got[name]
		if data == nil {
			continue
		}
		if !held[p] {
			if l, err := decodeIDs(data); err == nil && l.part == p && l.parts == n {
				src.ids[p] = l
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { // the held partitions' snapshots decode side by side
			defer wg.Done()
			defer func() { <-sem }()
			st, err := decodeSnapshot(data)
			if err == nil {
				st.name = name
			}
			if err == nil && (st.part != p || st.parts != n) {
				err = errors.New("snapshot of another partition or partition count")
			}
			if err != nil {
				w.opts.Log.Warn().Err(err).Int("partition", p).Msg("partition snapshot unreadable; using an older one")
				return
			}
			decoded[p] = st
		}()
	}
	wg.Wait()
	for p, st := range decoded {
		if st != nil {
			src.own[p] = st
		}
	}
	if err := w.passOverOtherHistory(ctx, near, src); err != nil {
		return nil, err
	}
	w.loadLegacy(ctx, src)
	want := n // partitions the load needs a snapshot or an id list of
	if w.apart != nil {
		want = len(w.heldPartitions())
	}
	if len(src.own)+len(src.ids) < want { // some partition has no snapshot of its own
		whole, err := w.fetchWholeOf(ctx, near)
		if err != nil {
			return nil, err
		}
		src.whole = whole
	}
	return w.installPartitions(src, held), nil
}

// loadLegacy reads the legacy entries the held partitions' snapshots rely on; a snapshot whose
// legacy object cannot be read is not used.
func (w *Writer) loadLegacy(ctx context.Context, src *partSources) {
	want := map[string]bool{}
	for _, st := range src.own {
		if st.legacy != "" {
			want[st.legacy] = true
		}
	}
	if len(want) == 0 {
		return
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	got := w.fetchAll(ctx, names)
	src.legacy = map[uint64]uint64{}
	for _, name := range names {
		entries, err := decodeLegacy(got[name])
		if err != nil {
			w.opts.Log.Warn().Err(err).Str("snapshot", name).Msg("legacy idempotency entries unreadable")
			for p, st := range src.own {
				if st.legacy == name {
					delete(src.own, p)
				}
			}
			continue
		}
		for k, e := range entries {
			src.legacy[k] = e
		}
		src.names = append(src.names, name)
	}
}

// fetchWhole loads and decodes the newest whole snapshot (v5, else v4, else v3); nil if none.
func (w *Writer) fetchWhole(ctx context.Context) *snapState {
	for _, name := range []string{snapshotName, snapshotNameV4, snapshotNameV3} {
		data, err := w.fetch(ctx, name, 0) // the whole state: as long as it takes
		if err != nil {
			w.opts.Log.Warn().Err(err).Str("snapshot", name).Msg("snapshot unavailable")
			return nil
		}
		if data == nil {
			continue
		}
		st, err := decodeSnapshot(data)
		if err != nil {
			w.opts.Log.Warn().Err(err).Str("snapshot", name).Msg("snapshot unreadable")
			return nil
		}
		st.name = name
		return st
	}
	return nil
}

// installPartitions builds the writer's state from the sources and returns the replay plan.
func (w *Writer) installPartitions(src *partSources, held []bool) *replayPlan {
	n := len(held)
	w.cache.reset(0)
	w.idem.accepted, w.idem.rejected, w.idem.order, w.idem.orderSeq = map[string]*commandRecord{}, map[string]*rejection{}, nil, 0
	w.idem.compacted, w.idem.rejCompact = map[uint64]uint64{}, map[uint64]uint64{}
	rp := &replayPlan{parts: n, above: make([]uint64, n)}
	logPos := uint64(1<<64 - 1) // the oldest rejection log position among the held partitions'
	for p := range n {
		switch st, ok := src.own[p]; {
		case held[p] && ok:
			w.merge(st, nil)
			rp.above[p], logPos = st.head, min(logPos, st.logPos)
		case held[p] && src.whole != nil:
			rp.above[p], logPos = src.whole.head, min(logPos, src.whole.logPos)
			w.snap.soon = true // its own snapshot is missing: the next load should not need the whole
		case held[p]:
			logPos = 0         // replayed from the start: every rejection is read again
			w.snap.soon = true // (a partition handed over without one, or never snapshotted yet)
		case src.ids[p] != nil:
			w.cache.noteIDs(src.ids[p].pairs)
			rp.above[p] = src.ids[p].head
		case src.whole != nil:
			rp.above[p] = src.whole.head
		}
	}
	if src.whole != nil {
		byHead := func(p int) bool { _, own := src.own[p]; return !own && (held[p] || src.ids[p] == nil) }
		w.merge(src.whole, byHead)
	}
	for k, e := range src.legacy {
		w.idem.compacted[k] = e
	}
	if len(src.names) == 1 && w.snap.legacy.merged == 0 {
		w.snap.legacy.name = src.names[0] // saved already; anything else is saved again as the union
		w.snap.legacy.saved.Store(true)
	}
	if logPos == 1<<64-1 {
		logPos = 0
	}
	w.idem.logPos = logPos
	rp.from = 1<<64 - 1
	for p, h := range rp.above {
		if held[p] || w.apart == nil { // read apart, the others' records are not read at all
			rp.from = min(rp.from, h)
		}
		rp.maxHead = max(rp.maxHead, h)
	}
	if rp.from == 1<<64-1 { // nothing held: nothing to read below the newest snapshot
		rp.from = rp.maxHead
	}
	rp.from++
	return rp
}

// merge adds a snapshot's state for the partitions keep accepts (nil: all): the held ones are
// restored, the others only lend the ids their accounts hold.
func (w *Writer) merge(st *snapState, keep func(int) bool) {
	n := w.opts.Partitions.Count
	in := func(accountID string) bool {
		return keep == nil || keep(ledger.PartitionOf(accountID, n))
	}
	var foreign [][2]string
	for id, s := range st.accounts {
		if !in(id) {
			continue
		}
		if w.holds(id) {
			a := s.account()
			w.cache.accounts[id] = a
			w.cache.ownAll(id, a)
			continue
		}
		for _, oid := range ownedIDs(s.State) {
			foreign = append(foreign, [2]string{oid, id})
		}
	}
	w.cache.noteIDs(foreign)
	for id, rec := range st.commands {
		if in(rec.accountID) && w.holds(rec.accountID) {
			w.idem.accepted[id] = rec
		}
	}
	for _, ref := range st.order {
		if rj := st.rejections[ref.id]; rj != nil && rj.seq == ref.seq && in(rj.accountID) && w.holds(rj.accountID) {
			w.idem.orderSeq++
			rj.seq = w.idem.orderSeq
			w.idem.rejected[ref.id] = rj
			w.idem.order = append(w.idem.order, rejectRef{id: ref.id, seq: rj.seq})
		}
	}
	for k, e := range st.compacted {
		p, known := entryPartition(e)
		if known && st.parts != n { // counted among another partition count: means nothing here
			e, known = e&(1<<compactPartShift-1), false
		}
		switch {
		case !known:
			w.idem.compacted[k] = e // a legacy entry: a union of facts is always correct
			w.snap.legacy.merged++
		case w.cache.holdsPartition(p) && (keep == nil || keep(p)):
			w.idem.compacted[k] = e
		}
	}
	for k, e := range st.rejCompact {
		p, known := entryPartition(e)
		switch {
		case !known || st.parts != n:
			// Counted among another partition count (or none): not split, and of no account this
			// writer holds but by chance; its rejections are decided afresh, as before they were
			// compacted.
		case w.cache.holdsPartition(p) && (keep == nil || keep(p)):
			w.idem.rejCompact[k] = e
		}
	}
}

// holds reports whether the writer holds the account (Options.Holds; nil: every account).
func (w *Writer) holds(accountID string) bool {
	return w.opts.Holds == nil || w.opts.Holds(accountID)
}
