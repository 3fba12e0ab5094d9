package writer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnapshotterDue: a snapshot falls due every positions past the last one, or at once when
// asked for soon; never while one is encoded, nor while it waits for stale accounts' re-reads.
func TestSnapshotterDue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		s         *snapshotter
		head      uint64
		rereading bool
		due       bool
	}{
		{"fresh", &snapshotter{every: 10, head: 100}, 105, false, false},
		{"every positions on", &snapshotter{every: 10, head: 100}, 110, false, true},
		{"asked for soon", &snapshotter{every: 10, head: 100, soon: true}, 100, false, true},
		{"encoding one", &snapshotter{every: 10, head: 100, encoding: &snapInFlight{}}, 200, false, false},
		{"waiting for re-reads", &snapshotter{every: 10, head: 100, soon: true, staleDeferred: true}, 200, true, false},
		{"re-reads done", &snapshotter{every: 10, head: 100, soon: true, staleDeferred: true}, 200, false, true},
		{"re-reads of another snapshot", &snapshotter{every: 10, head: 100}, 200, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.due, c.s.due(c.head, c.rereading))
		})
	}
	s := snapshotter{head: 7}
	assert.False(t, s.behind(7, 0))
	assert.True(t, s.behind(8, 0), "positions past the snapshot")
	assert.True(t, s.behind(7, 1), "rejections remembered since")
}

// TestSnapshotterStaleDeferredOnce: a snapshot that started stale re-reads is asked for soon, and
// the next one due does not wait for re-reads again.
func TestSnapshotterStaleDeferredOnce(t *testing.T) {
	t.Parallel()
	var s snapshotter
	assert.False(t, s.waitedForStale())
	s.deferForStale()
	assert.True(t, s.soon)
	assert.True(t, s.waitedForStale())
	assert.False(t, s.waitedForStale(), "only once")
}

// TestSnapshotterSaves: each save waits for the one before (startSave hands it the previous
// channel); saveRunning reports one still running, or waits for it.
func TestSnapshotterSaves(t *testing.T) {
	t.Parallel()
	var s snapshotter
	assert.False(t, s.saveRunning(false), "none started")
	prev, first := s.startSave()
	assert.Nil(t, prev)
	prev, second := s.startSave()
	assert.Equal(t, first, prev, "the second waits for the first")
	assert.True(t, s.saveRunning(false))

	close(first)
	assert.True(t, s.saveRunning(false), "the last one started still runs")
	go close(second)
	assert.False(t, s.saveRunning(true), "waited for")
	assert.False(t, s.saveRunning(false))
}

// TestSnapshotterEncoding: share starts a new generation of accounts' maps; thaw ends only the
// encoding in flight, takes its accounts' slice for reuse and the legacy object it named.
func TestSnapshotterEncoding(t *testing.T) {
	t.Parallel()
	var s snapshotter
	buf := s.accountsBuf(4)
	require.Equal(t, 0, len(buf))
	require.GreaterOrEqual(t, cap(buf), 4)
	c := &snapCapture{accts: append(buf, acctSnap{id: "a"})[:0], legacy: "writer-v5-legacy-1", legacyData: []byte("x")}
	f := s.share(c)
	assert.Equal(t, uint64(1), s.gen)
	assert.Same(t, f, s.encoding)

	assert.False(t, s.thaw(&snapInFlight{capture: &snapCapture{}}), "another encoding: thawed already")
	assert.Same(t, f, s.encoding)
	assert.True(t, s.thaw(f))
	assert.Nil(t, s.encoding)
	assert.False(t, s.thaw(f), "twice")
	assert.Equal(t, "writer-v5-legacy-1", s.legacy.name)

	again := s.accountsBuf(2)
	assert.Equal(t, cap(buf), cap(again), "the previous capture's slice is reused")
	assert.Nil(t, s.acctBuf, "owned by the new capture until it is thawed")
	assert.Greater(t, cap(s.accountsBuf(100)), 100, "a larger one when it is too small")

	s.share(c)
	assert.Equal(t, uint64(2), s.gen)
}

// TestSnapshotterLegacy: a legacy object not named yet is captured as unsaved; the first name an
// encoder gives it is kept, and its saved mark travels into the next capture.
func TestSnapshotterLegacy(t *testing.T) {
	t.Parallel()
	var s snapshotter
	s.legacy.saved.Store(true) // stale mark of an object since forgotten
	name, _, saved := s.captureLegacy()
	assert.Equal(t, "", name)
	assert.False(t, saved, "an object the encoder names is not saved yet")

	s.adoptLegacy(&snapCapture{legacy: "first", legacyData: []byte("1")})
	s.adoptLegacy(&snapCapture{legacy: "second", legacyData: []byte("2")})
	name, data, saved := s.captureLegacy()
	assert.Equal(t, "first", name)
	assert.Equal(t, []byte("1"), data)
	assert.False(t, saved)

	s.legacy.saved.Store(true) // a save succeeded
	_, _, saved = s.captureLegacy()
	assert.True(t, saved)
}
