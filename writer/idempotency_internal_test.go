package writer

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// storeAt is a store whose only records are the ones given, by position.
type storeAt struct {
	ledger.Store
	recs map[uint64]ledger.Record
}

func (s storeAt) ReadAt(_ context.Context, pos uint64) (ledger.Record, error) {
	r, ok := s.recs[pos]
	if !ok {
		return ledger.Record{}, ledger.ErrNoRecord
	}
	return r, nil
}

// TestCompactedHashCollision: a command whose hash is already taken by another command is new
// (the stored event names the other command), and its own record then stays in full.
func TestCompactedHashCollision(t *testing.T) {
	t.Parallel()
	w := &Writer{idem: idempotency{accepted: map[string]*commandRecord{}, compacted: map[uint64]uint64{}}}
	// Position 7 holds an event of command "other"; pretend "mine" hashes to the same key.
	w.opts.Store = storeAt{recs: map[uint64]ledger.Record{7: {AccountID: "a", Position: 7, Data: encodedEvent(t, "a", "other")}}}
	seven, ok := compactEntry(7, 1, 3)
	require.True(t, ok)
	w.idem.compacted[commandKey("mine")] = seven
	s := w.idem.lookup("mine", false, false)
	require.True(t, s.compact)
	pos, n := splitEntry(s.entry)
	rec, err := readRecord(context.Background(), w.opts.Store, "mine", pos, n)
	require.NoError(t, err)
	assert.Nil(t, rec, "the event at the position belongs to another command")

	w.idem.accepted["mine"] = &commandRecord{accountID: "a", result: Result{Events: []EventRef{{Position: 9}}}}
	w.compactCommands()
	assert.Contains(t, w.idem.accepted, "mine", "its hash is taken: it keeps its full record")
	assert.Equal(t, seven, w.idem.compacted[commandKey("mine")])
	assert.Equal(t, uint64(9), w.idem.lookup("mine", false, false).accepted.result.Events[0].Position)
}

// TestSnapshotV3AndV4StillRead: snapshots in the previous formats restore: v3 (full records, no
// compacted section) and v4 (compacted entries with no partition: they come back with an unknown
// partition, kept whatever partitions a writer holds).
func TestSnapshotV3AndV4StillRead(t *testing.T) {
	t.Parallel()
	w := &Writer{cache: accountCache{accounts: map[string]*account{}}, idem: idempotency{accepted: map[string]*commandRecord{
		"c1": {accountID: "a", bodyHash: "h", result: Result{AccountID: "a", Version: 1, Position: 3,
			Events: []EventRef{{Type: "LicensePurchased", Version: 1, Position: 3}}}},
	}}}
	v5, err := w.encodeSnapshot()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0}, v5[len(v5)-2:], "empty compacted sections (commands, rejections) end a v5 snapshot")
	body := v5[len(snapshotMagic)+1 : len(v5)-2] // after the magic and the partition count (0)
	v3 := append([]byte(snapshotMagicV3), body...)

	r := &Writer{}
	st, err := decodeSnapshot(v3)
	require.NoError(t, err)
	r.install(st)
	assert.Equal(t, w.idem.accepted, r.idem.accepted)
	assert.Empty(t, r.idem.compacted)

	_, err = decodeSnapshot(v5[:len(v5)-2]) // a v5 snapshot cut short
	assert.Error(t, err)

	// A v4 compacted entry: first position 9 in the low 48 bits, 2 events in the high 16.
	v4 := append(append([]byte(snapshotMagicV4), body...), 1)
	v4 = binary.LittleEndian.AppendUint64(v4, commandKey("old"))
	v4 = binary.LittleEndian.AppendUint64(v4, 9|2<<48)
	st, err = decodeSnapshot(v4)
	require.NoError(t, err)
	assert.Equal(t, 4, st.format)
	entry := st.compacted[commandKey("old")]
	first, n := splitEntry(entry)
	assert.Equal(t, uint64(9), first)
	assert.Equal(t, 2, n)
	_, known := entryPartition(entry)
	assert.False(t, known, "a v4 entry names no partition")
}

// TestCompactEntryRange: an entry packs position, event count and partition, and refuses what
// does not fit (the command then keeps its full record).
func TestCompactEntryRange(t *testing.T) {
	t.Parallel()
	e, ok := compactEntry(1<<41-1, ledger.MaxEventsPerCommand, ledger.MaxPartitions-1)
	require.True(t, ok)
	first, n := splitEntry(e)
	p, known := entryPartition(e)
	assert.Equal(t, []any{uint64(1<<41 - 1), ledger.MaxEventsPerCommand, ledger.MaxPartitions - 1, true}, []any{first, n, p, known})
	for _, bad := range [][3]int{{1 << 41, 1, 0}, {1, 0, 0}, {1, 1024, 0}, {1, 1, compactPartMax + 1}, {1, 1, -2}} {
		_, ok := compactEntry(uint64(bad[0]), bad[1], bad[2])
		assert.False(t, ok, "%v", bad)
	}
}

// encodedEvent is a stored LicenseActivated of account by command.
func encodedEvent(t *testing.T, account, command string) []byte {
	t.Helper()
	raw, err := events.EncodePayload(events.LicenseActivated{LicenseID: "L"})
	require.NoError(t, err)
	env := events.Envelope{EventID: "e", Type: events.TypeLicenseActivated, SchemaVersion: 1, AccountID: account,
		Version: 1, CommandID: command, Payload: raw, PrevHash: events.ZeroHash}
	b, err := env.SealEncode()
	require.NoError(t, err)
	return b
}
