package writer

import "sync/atomic"

// snapshotter is the writer's snapshot bookkeeping (snapshot.go, snapcapture.go, partsnap.go):
// where the last snapshot stands and whether the next one is due, the save and the encoding in
// flight, the generation against which accounts' maps are owned (ownState), the capture buffer to
// reuse, and the object of legacy compacted entries. It makes no store call and starts nothing;
// the writer goroutine alone changes it, except a save marking the legacy object saved (atomic).
type snapshotter struct {
	// every is how many positions past head make a snapshot due (Options.SnapshotEvery).
	every uint64
	// head is the position of the last snapshot taken, restored, or skipped (one that failed is
	// tried again every positions on).
	head uint64
	// soon asks for a snapshot at once: a held partition was loaded without one of its own, or a
	// snapshot waits for the re-reads of stale accounts (staleDeferred).
	soon bool
	// staleDeferred: the due snapshot started re-reads of stale accounts and waits for them once
	// (rereadStale).
	staleDeferred bool
	// saving is closed when the last save started ends (nil: none started).
	saving chan struct{}
	// encoding is the periodic snapshot being encoded beside the loop (nil: none), gen the
	// generation of the latest capture shared so (snapcapture.go).
	encoding *snapInFlight
	gen      uint64
	// acctBuf is the accounts' slice of the last periodic capture, for the next to reuse.
	acctBuf []acctSnap
	// encodeHook, when set (tests only: export_test.go), runs before a snapshot is encoded.
	encodeHook func()
	// pruning says the snapshot's read of the rejection log's first position is in flight
	// (rejcompact.go: pruneBeside).
	pruning bool
	// legacy is the object of the compacted entries that name no partition (partsnap.go).
	legacy legacyObject
}

// legacyObject is the snapshot object holding the compacted entries that name no partition (read
// from a v4 snapshot): its name and content once an encoder named it, whether a save of it
// succeeded, and how many such entries a load took from snapshots other than one saved object.
type legacyObject struct {
	name   string
	data   []byte
	saved  atomic.Bool
	merged int
}

// due reports whether a snapshot is due at head: none is being encoded, head is every positions
// past the last one (or one is asked for soon), and it is not waiting for stale accounts'
// re-reads still running.
func (s *snapshotter) due(head uint64, rereading bool) bool {
	return s.encoding == nil && (head-s.head >= s.every || s.soon) && !(s.staleDeferred && rereading)
}

// behind reports whether the state at head has anything the last snapshot lacks: positions past
// its head, or idempotency records changed since (sinceSnap).
func (s *snapshotter) behind(head uint64, sinceSnap int) bool {
	return head > s.head || sinceSnap > 0
}

// saveRunning reports whether the last save started still runs; with wait it waits for it to end
// instead, and reports false.
func (s *snapshotter) saveRunning(wait bool) bool {
	if s.saving == nil {
		return false
	}
	select {
	case <-s.saving:
		return false
	default:
	}
	if wait {
		<-s.saving
		return false
	}
	return true
}

// startSave records a save about to start: it returns the channel closed when the previous save
// ends (nil: none), which the new one waits for, and the one it must close when it ends.
func (s *snapshotter) startSave() (prev, done chan struct{}) {
	prev, done = s.saving, make(chan struct{})
	s.saving = done
	return prev, done
}

// deferForStale is called when a due snapshot started re-reads of stale accounts: it is taken
// again once they are done (soon), and then does not wait for them again (waitedForStale).
func (s *snapshotter) deferForStale() { s.staleDeferred, s.soon = true, true }

// waitedForStale reports, once, that the snapshot now due already waited for stale re-reads.
func (s *snapshotter) waitedForStale() bool {
	if !s.staleDeferred {
		return false
	}
	s.staleDeferred = false
	return true
}

// share starts the encoding of c beside the loop: a new generation of accounts' maps (ownState).
func (s *snapshotter) share(c *snapCapture) *snapInFlight {
	s.gen++
	s.encoding = &snapInFlight{capture: c, encoded: make(chan struct{})}
	return s.encoding
}

// thaw ends the encoding of f (once its encoder is done): its accounts' slice (cleared by the
// encoder: release) is kept for the next capture, and the legacy object it named adopted. It
// reports false when f was thawed already.
func (s *snapshotter) thaw(f *snapInFlight) bool {
	if s.encoding != f {
		return false
	}
	s.encoding = nil
	s.acctBuf = f.capture.accts
	s.adoptLegacy(f.capture)
	return true
}

// accountsBuf returns an empty slice for a capture of n accounts: the previous capture's, when
// it is large enough (a capture owns it until thaw gives it back).
func (s *snapshotter) accountsBuf(n int) []acctSnap {
	buf := s.acctBuf[:0]
	s.acctBuf = nil
	if cap(buf) < n {
		buf = make([]acctSnap, 0, n+n/8)
	}
	return buf
}

// captureLegacy returns the legacy object as a capture takes it: one not named yet is not saved.
func (s *snapshotter) captureLegacy() (name string, data []byte, saved bool) {
	if s.legacy.name == "" {
		s.legacy.saved.Store(false) // a legacy object the encoder names is not saved yet
	}
	return s.legacy.name, s.legacy.data, s.legacy.saved.Load()
}

// adoptLegacy keeps the name and content of the legacy object an encoder named.
func (s *snapshotter) adoptLegacy(c *snapCapture) {
	if s.legacy.name == "" && c.legacy != "" {
		s.legacy.name, s.legacy.data = c.legacy, c.legacyData
	}
}
