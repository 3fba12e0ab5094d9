package writer

import (
	"context"
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
	seven, ok := compactEntry(7, 1)
	require.True(t, ok)
	w.idem.compacted[commandKey("mine")] = seven
	s := w.idem.lookup("mine", false)
	require.True(t, s.compact)
	pos, n := splitEntry(s.entry)
	rec, err := readRecord(context.Background(), w.opts.Store, "mine", pos, n)
	require.NoError(t, err)
	assert.Nil(t, rec, "the event at the position belongs to another command")

	w.idem.accepted["mine"] = &commandRecord{accountID: "a", result: Result{Events: []EventRef{{Position: 9}}}}
	w.compactCommands()
	assert.Contains(t, w.idem.accepted, "mine", "its hash is taken: it keeps its full record")
	assert.Equal(t, seven, w.idem.compacted[commandKey("mine")])
	assert.Equal(t, uint64(9), w.idem.lookup("mine", false).accepted.result.Events[0].Position)
}

// TestSnapshotV3StillReads: a snapshot in the previous format (full records, no compacted
// section) restores its idempotency records.
func TestSnapshotV3StillReads(t *testing.T) {
	t.Parallel()
	w := &Writer{accounts: map[string]*account{}, idem: idempotency{accepted: map[string]*commandRecord{
		"c1": {accountID: "a", bodyHash: "h", result: Result{AccountID: "a", Version: 1, Position: 3,
			Events: []EventRef{{Type: "LicensePurchased", Version: 1, Position: 3}}}},
	}}}
	v4, err := w.encodeSnapshot()
	require.NoError(t, err)
	require.Equal(t, byte(0), v4[len(v4)-1], "an empty compacted section ends a v4 snapshot")
	v3 := append([]byte(snapshotMagicV3), v4[len(snapshotMagic):len(v4)-1]...)

	r := &Writer{}
	_, err = r.restore(v3)
	require.NoError(t, err)
	assert.Equal(t, w.idem.accepted, r.idem.accepted)
	assert.Empty(t, r.idem.compacted)

	_, err = r.restore(v4[:len(v4)-1]) // a v4 snapshot cut short
	assert.Error(t, err)
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
