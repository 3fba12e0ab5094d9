package writer

import (
	"github.com/creditledger/creditledger/ledger"
)

// Snapshots beside the writer goroutine. At a snapshot the writer goroutine only captures the
// state at its head H (capture): a copy of each account's entry (its state's maps are shared,
// not copied), the few full idempotency records and remembered rejections that compaction left,
// the rejection log position, and the two maps of compact entries themselves. A periodic
// snapshot then encodes and saves the capture on a side worker (side.go) while commands go on.
//
// What the capture shares stays as it was at H until the encoder is done with it:
//
//   - an account's maps: the first change of an account while an encoder may still read them
//     (its Evolve: ownState) is made to a clone, once per account and snapshot;
//   - the compacted entries: only a snapshot's compaction, Forget and a load change them, and
//     each waits for the encoder first (awaitEncode);
//   - the compact rejections, which every answered rejection may change: while frozen, changes
//     go to an overlay (idempotency.rejOver) that lookups read first, and are folded into the
//     map, with a prune that arrived meanwhile, once the encoder is done (thaw).
//
// One snapshot is encoded at a time. A hand-over's snapshot and the final one at a graceful
// stop are still encoded on the writer goroutine: nothing runs then anyway, and a hand-over
// must finish its snapshot before the partition's lease goes.

// acctSnap is one account of a capture.
type acctSnap struct {
	id   string
	snap accountSnap
}

// cmdSnap is one full idempotency record of a capture (a copy: the writer may extend its own).
type cmdSnap struct {
	id  string
	rec commandRecord
}

// rejSnap is one remembered rejection of a capture.
type rejSnap struct {
	id, accountID, bodyHash string
	err                     *ledger.Error
}

// snapCapture is the writer's state at one head, as the encoder reads it beside the writer
// goroutine: it holds nothing the writer changes in place while an encoder reads it.
type snapCapture struct {
	head   uint64
	count  int // the partition count (0: none)
	accts  []acctSnap
	cmds   []cmdSnap
	rejs   []rejSnap // oldest first
	logPos uint64
	// compacted and rejCompact are the writer's own maps, frozen while the encoder reads them.
	compacted, rejCompact map[uint64]uint64
	// The legacy object (partsnap.go) as the writer knew it; the encoder names it the first time.
	legacy      string
	legacyData  []byte
	legacySaved bool
	// fingerprint is the store's fingerprint of the message at head, read beside the writer
	// goroutine before the encoding (snapident.go); every object encoded carries it.
	fingerprint []byte
}

// partitionOf is an account's partition (-1: no partition count).
func (c *snapCapture) partitionOf(accountID string) int { return partitionOf(accountID, c.count) }

// capture takes the writer's state at head, on the writer goroutine, after compaction.
func (w *Writer) capture(head uint64) *snapCapture {
	c := &snapCapture{
		head: head, count: max(w.opts.Partitions.Count, 0), logPos: w.idem.logPos,
		compacted: w.idem.compacted, rejCompact: w.idem.rejCompact,
		accts: w.snap.accountsBuf(len(w.cache.accounts)), // the previous periodic capture's, cleared by its encoder
	}
	c.legacy, c.legacyData, c.legacySaved = w.snap.captureLegacy()
	for id, a := range w.cache.accounts {
		if a.stale || a.foreign {
			continue // re-read from the stream after restore; another node's
		}
		s := accountSnap{State: a.state, Head: a.head, Hash: a.hash}
		if a.broken != nil {
			s.Broken, s.BrokenAt = a.broken.reason, a.broken.position
		}
		c.accts = append(c.accts, acctSnap{id: id, snap: s})
	}
	for id, rec := range w.idem.accepted {
		c.cmds = append(c.cmds, cmdSnap{id: id, rec: *rec})
	}
	for _, ref := range w.idem.order {
		if rj, ok := w.idem.rejected[ref.id]; ok && rj.seq == ref.seq { // not forgotten since
			c.rejs = append(c.rejs, rejSnap{id: ref.id, accountID: rj.accountID, bodyHash: rj.bodyHash, err: rj.err})
		}
	}
	return c
}

// encode encodes the capture: one whole snapshot, or those of parts.
func (c *snapCapture) encode(whole bool, parts []int) ([]snapObject, error) {
	if !whole {
		return c.encodePartitions(parts)
	}
	data, err := c.encodeWhole()
	return []snapObject{{snapshotName, data}}, err
}

// release drops what the capture holds once it is encoded, beside the writer goroutine: the
// accounts' slice is cleared there for the next capture to reuse (thaw), without keeping the
// states it named alive.
func (c *snapCapture) release() {
	clear(c.accts)
	c.accts = c.accts[:0]
	c.compacted, c.rejCompact, c.cmds, c.rejs = nil, nil, nil, nil
}

// snapInFlight is a capture an encoder reads beside the writer goroutine.
type snapInFlight struct {
	capture *snapCapture
	// encoded is closed once the encoder no longer reads the capture.
	encoded chan struct{}
}

// share marks what c shares with the writer as read beside it until thaw: a new generation of
// accounts (ownState), and the compact rejections frozen.
func (w *Writer) share(c *snapCapture) *snapInFlight {
	w.idem.freezeRej()
	return w.snap.share(c)
}

// encodeRunning reports whether an encoder may still read what the writer shares with it; one
// that has finished is thawed here.
func (w *Writer) encodeRunning() bool {
	f := w.snap.encoding
	if f == nil {
		return false
	}
	select {
	case <-f.encoded:
		w.thaw(f)
		return false
	default:
		return true
	}
}

// awaitEncode waits for the encoder in flight, if any, and thaws what it read.
func (w *Writer) awaitEncode() {
	if f := w.snap.encoding; f != nil {
		<-f.encoded
		w.thaw(f)
	}
}

// thaw ends the sharing of f (once its encoder is done): the compact rejections take the changes
// made meanwhile, and the legacy object the encoder named is adopted.
func (w *Writer) thaw(f *snapInFlight) {
	if !w.snap.thaw(f) {
		return // thawed already
	}
	if first := w.idem.thawRej(); first > 0 {
		w.stats.rejPruned.Add(uint64(w.idem.pruneRejections(first)))
	}
}

// ownState makes a's state the writer's own before it is changed in place (ledger.Evolve): while
// an encoder may still read the maps a capture shares with it, they are cloned first, once per
// account and snapshot.
func (w *Writer) ownState(a *account) {
	if a.ownGen == w.snap.gen {
		return
	}
	if w.encodeRunning() {
		a.state = a.state.Clone()
	}
	a.ownGen = w.snap.gen
}

// freezeRej starts sending changes of the compact rejections to the overlay.
func (m *idempotency) freezeRej() {
	m.rejFrozen, m.rejOver, m.pruneBelow = true, map[uint64]uint64{}, 0
}

// thawRej folds the overlay into the compact rejections and returns the log position below
// which a prune that arrived meanwhile drops them (0: none).
func (m *idempotency) thawRej() uint64 {
	if !m.rejFrozen {
		return 0
	}
	if m.rejCompact == nil && len(m.rejOver) > 0 {
		m.rejCompact = map[uint64]uint64{}
	}
	for k, e := range m.rejOver {
		if e == 0 {
			delete(m.rejCompact, k)
			continue
		}
		m.rejCompact[k] = e
	}
	first := m.pruneBelow
	m.rejFrozen, m.rejOver, m.pruneBelow = false, nil, 0
	return first
}

// rejGet looks up a compact rejection (the overlay first while frozen).
func (m *idempotency) rejGet(k uint64) (uint64, bool) {
	if m.rejFrozen {
		if e, ok := m.rejOver[k]; ok {
			return e, e != 0
		}
	}
	e, ok := m.rejCompact[k]
	return e, ok
}

// rejSet stores a compact rejection (an entry is never 0: its position is not).
func (m *idempotency) rejSet(k, e uint64) {
	if m.rejFrozen {
		m.rejOver[k] = e
		return
	}
	if m.rejCompact == nil {
		m.rejCompact = map[uint64]uint64{}
	}
	m.rejCompact[k] = e
}

// rejDelete forgets a compact rejection (a tombstone in the overlay while frozen).
func (m *idempotency) rejDelete(k uint64) {
	if m.rejFrozen {
		if _, ok := m.rejCompact[k]; ok {
			m.rejOver[k] = 0
		} else {
			delete(m.rejOver, k)
		}
		return
	}
	delete(m.rejCompact, k)
}
