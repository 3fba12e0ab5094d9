package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// fenceRecord is partition p's ownership record among n partitions, as the ledger stores it.
func fenceRecord(t testing.TB, p, n int, revision uint64) []byte {
	t.Helper()
	b, err := ledger.EncodeFence(ledger.Fence{Format: ledger.FenceFormat, LeaseRevision: revision, Owner: "node-a",
		Partition: p, Partitions: n, Time: testledger.Epoch.UTC()})
	require.NoError(t, err)
	return b
}

// publishRaw stores data on subject in the LEDGER stream, as the ledger's identity could, and
// returns its position.
func publishRaw(t testing.TB, url, subject string, data []byte) uint64 {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("fence-writer"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ack, err := js.Publish(ctxT(t), subject, data)
	require.NoError(t, err)
	return ack.Sequence
}

// streamPartitions is the partition count the LEDGER stream records.
func streamPartitions(t testing.TB, src *audit.Source) int {
	t.Helper()
	info, err := src.Info(ctxT(t))
	require.NoError(t, err)
	n, err := jetstore.Partitions(info.Config)
	require.NoError(t, err)
	return n
}

func buy(t testing.TB, l *testledger.Ledger, acc string) {
	t.Helper()
	send(t, l, nil, "purchase_license", map[string]any{"account_id": acc, "command_id": acc + "-buy",
		"license_id": acc + "-L", "source": "sales", "credits": "100"})
}

// ownRecord checks that the message at position pos (1-based) of all is an ownership record the
// ledger wrote for partition p: it names the owner that the ledger's last record of p before
// position base (its start's) names, at a later lease revision (a new tenure), not node-a.
func ownRecord(t *testing.T, all []audit.Message, base, pos uint64, p, n int) {
	t.Helper()
	require.True(t, all[pos-1].IsFence(), "position %d is an ownership record", pos)
	f, err := audit.CheckFence(all[pos-1], n)
	require.NoError(t, err, "position %d", pos)
	var started ledger.Fence
	for _, m := range all[:base] {
		if g, err := audit.CheckFence(m, n); err == nil && g.Partition == p {
			started = g
		}
	}
	require.NotEmpty(t, started.Owner, "the start wrote a record of partition %d", p)
	assert.Equal(t, p, f.Partition)
	assert.Equal(t, started.Owner, f.Owner, "the ledger's own record")
	assert.NotEqual(t, "node-a", f.Owner)
	assert.Greater(t, f.LeaseRevision, started.LeaseRevision, "a new tenure")
}

// Ownership records between the events: replay and export keep every position, verify counts
// them apart from the events and finds nothing, and the rebuilt read models match the live ones.
// The records are the ledger's own (one per partition at start, and the one it writes when it
// takes back a partition another writer fenced) and two written by another writer: the one on
// acme's partition fences the ledger out of it, so acme's next command is refused, and the
// ledger takes the partition again, writing its own record before the event.
func TestOwnershipRecordsBetweenEvents(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, onDemandOnly)
	url := l.ClientURL()
	_, src := connect(t, url)
	n := streamPartitions(t, src)
	base := l.Head() // the ledger's own records, one per partition, written at start
	require.Equal(t, uint64(n), base)
	pa, pg := ledger.PartitionOf("acme", n), ledger.PartitionOf("globex", n)
	require.NotEqual(t, pa, pg)
	require.NotContains(t, []int{pa, pg}, n-1, "no command touches partition n-1 after its record")
	buy(t, l, "acme")
	f1 := publishRaw(t, url, jetstore.FenceSubject(pa), fenceRecord(t, pa, n, 1))
	buy(t, l, "globex")
	act := send(t, l, nil, "activate_license", map[string]any{"account_id": "acme", "license_id": "acme-L"})
	require.Len(t, act.Events, 1)
	retaken := act.Events[0].Position - 1
	f2 := publishRaw(t, url, jetstore.FenceSubject(n-1), fenceRecord(t, n-1, n, 2))
	send(t, l, nil, "activate_license", map[string]any{"account_id": "globex", "license_id": "globex-L"})
	require.Equal(t, []uint64{base + 2, base + 4, base + 6}, []uint64{f1, retaken, f2},
		"acme's refused activation stored nothing; the ledger's record of the partition it took back comes before the event")

	all := replayAll(t, src, audit.Filter{})
	require.Len(t, all, int(base)+7)
	tree := audit.NewLogTree()
	for i, m := range all {
		require.Equal(t, uint64(i+1), m.Position, "positions are contiguous")
		want := m.Position <= base || m.Position == f1 || m.Position == retaken || m.Position == f2
		assert.Equal(t, want, m.IsFence(), "position %d", m.Position)
		tree.Append(audit.LogLeafHash(m.Data))
	}
	assert.Equal(t, string(fenceRecord(t, n-1, n, 2)), string(all[f2-1].Data))
	ownRecord(t, all, base, retaken, pa, n)

	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, uint64(4), rep.Events)
	assert.Equal(t, base+3, rep.Fences)
	assert.Equal(t, 2, rep.Accounts)
	assert.Equal(t, base+7, rep.HeadPosition)
	assert.Equal(t, fmt.Sprintf("%x", tree.Root()), rep.LogRoot, "the log tree has a leaf for each ownership record")

	one, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{AccountID: "acme"})
	require.NoError(t, err)
	assert.True(t, one.OK, "%v", one.Findings)
	assert.Equal(t, uint64(2), one.Events)
	assert.Zero(t, one.Fences)

	var stored bytes.Buffer
	written, odd, err := audit.ReplayStored(ctxT(t), src, audit.Filter{}, &stored)
	require.NoError(t, err)
	assert.Equal(t, int(base)+7, written)
	assert.Zero(t, odd)
	lines := strings.Split(strings.TrimSuffix(stored.String(), "\n"), "\n")
	require.Len(t, lines, int(base)+7, "line N is position N")
	assert.Equal(t, string(all[f1-1].Data), lines[f1-1])
	assert.Equal(t, string(all[retaken-1].Data), lines[retaken-1])

	var cs bytes.Buffer
	_, err = audit.Export(ctxT(t), src, audit.Filter{}, audit.FormatCSV, &cs)
	require.NoError(t, err)
	back, err := audit.ReadCSV(&cs)
	require.NoError(t, err)
	require.Len(t, back, int(base)+7)
	for i := range all {
		assert.Equal(t, all[i].Subject, back[i].Subject)
		assert.Equal(t, string(all[i].Data), string(back[i].Data), "csv row %d rebuilds the stored bytes", i)
	}

	acme := replayAll(t, src, audit.Filter{AccountID: "acme"})
	require.Len(t, acme, 2, "one account's replay holds its events only")
	at := testledger.Epoch // every event's occurred_at and every record's time (the clock stands still)
	assert.Len(t, replayAll(t, src, audit.Filter{Since: at}), int(base)+7)
	assert.Empty(t, replayAll(t, src, audit.Filter{Until: at}), "a record is kept or left out by its time, as an event by its occurred_at")

	rb, err := audit.Rebuild(ctxT(t), src, l.Client, ledger.DefaultCatalogue())
	require.NoError(t, err)
	assert.True(t, rb.OK, "%v", rb.Differences)
	assert.Zero(t, rb.Parked, "ownership records are not fed to the rebuilt projector")
}

// A message on a fence subject that is not that partition's ownership record is a foreign_fence
// finding at its position; a record's bytes on an events subject stay an undecodable event. The
// events around them verify as before, and so do the ledger's own records (written at start).
func TestForeignMessagesOnFenceSubjects(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, onDemandOnly)
	url := l.ClientURL()
	_, src := connect(t, url)
	n := streamPartitions(t, src)
	base := l.Head() // the ledger's own records, one per partition, written at start
	// The messages on partition 3's fence subject fence the ledger out of partition 3: acme's
	// activation is not to be refused (and the ledger's record of its taking 3 back counted).
	require.NotEqual(t, 3, ledger.PartitionOf("acme", n))
	buy(t, l, "acme")
	indented := bytes.Replace(fenceRecord(t, 3, n, 1), []byte(`,"owner"`), []byte(`, "owner"`), 1)
	foreign := map[uint64]string{
		publishRaw(t, url, jetstore.FenceSubject(3), []byte(`{}`)):                         "garbled",
		publishRaw(t, url, jetstore.FenceSubject(3), fenceRecord(t, 5, n, 1)):              "another partition's record",
		publishRaw(t, url, jetstore.FenceSubject(3), fenceRecord(t, 3, n+1, 1)):            "another partition count",
		publishRaw(t, url, jetstore.FenceSubject(3), indented):                             "not canonical",
		publishRaw(t, url, jetstore.FencePrefix+"03", fenceRecord(t, 3, n, 1)):             "a subject that is not the partition's",
		publishRaw(t, url, jetstore.FencePrefix+"x", fenceRecord(t, 0, n, 1)):              "a subject naming no partition",
		publishRaw(t, url, jetstore.DefaultSubjects.Of("zed"), fenceRecord(t, 3, n, 1)):    "a record on an events subject",
		publishRaw(t, url, jetstore.FenceSubject(3), append(fenceRecord(t, 3, n, 1), ' ')): "trailing bytes",
	}
	good := publishRaw(t, url, jetstore.FenceSubject(3), fenceRecord(t, 3, n, 2))
	send(t, l, nil, "activate_license", map[string]any{"account_id": "acme", "license_id": "acme-L"})

	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.False(t, rep.OK)
	assert.Equal(t, len(foreign), rep.FindingsTotal, "%v", rep.Findings)
	assert.Equal(t, base+1, rep.Fences, "the start's records and the one at position %d", good)
	for _, f := range rep.Findings {
		what, ok := foreign[f.Position]
		require.True(t, ok, "unexpected finding %s", f)
		want := audit.KindForeignFence
		if what == "a record on an events subject" {
			want = audit.KindUndecodable
		}
		assert.Equal(t, want, f.Kind, "%s: %s", what, f)
		delete(foreign, f.Position)
	}
	assert.Empty(t, foreign, "each foreign message is named at its position")
}

// The checkpoint publisher follows every subject: it signs trees whose leaves include ownership
// records, each proved consistent with the one before (a format-1 checkpoint as an older build
// signed, then, past the records the upgraded ledger writes at its start, format-2 ones on both
// sides of a record another writer stored), and it stops signing at a foreign message on a fence
// subject. Proofs of positions after a record, and of the records themselves, verify (GET
// /v1/audit/proof too); a consistency proof across them too.
func TestCheckpointsOverOwnershipRecords(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, onDemandOnly)
	buy(t, l, "acme")
	// Format 1 (before ownership records were signed as leaves; its log digest covers the
	// start's records like any message), then the records of a new start: an upgrade.
	legacyCheckpoint(t, l, nil)
	l.Restart(t)
	url := l.ClientURL()
	nc, src := connect(t, url)
	n := streamPartitions(t, src)
	base := l.Head() // acme's event and both starts' records, one per partition each
	require.Equal(t, uint64(2*n+1), base)
	keys := []ed25519.PublicKey{ledgerKey(t, l)}
	buy(t, l, "globex")
	before := requestCheckpoint(t, nc)
	pa := ledger.PartitionOf("acme", n)
	require.NotEqual(t, 0, pa, "the forged record below must not fence acme's partition")
	// Another writer's record on acme's partition fences the ledger out of it: acme's next
	// command is refused, and the ledger takes the partition again, writing its own record first.
	fence := publishRaw(t, url, jetstore.FenceSubject(pa), fenceRecord(t, pa, n, 1))
	act := send(t, l, nil, "activate_license", map[string]any{"account_id": "acme", "license_id": "acme-L"})
	require.Len(t, act.Events, 1)
	retaken, event := fence+1, act.Events[0].Position
	require.Equal(t, fence+2, event, "the ledger's record of the partition it took back, then the event")
	after := requestCheckpoint(t, nc)
	require.Equal(t, event, after.Size)
	all := replayAll(t, src, audit.Filter{})
	ownRecord(t, all, base, retaken, pa, n)

	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: keys})
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, 3, rep.Checkpoints)
	assert.Equal(t, uint64(3), rep.Events)
	assert.Equal(t, uint64(2*n+2), rep.Fences, "both starts' records, the other writer's and the ledger's own after it")
	assert.Equal(t, fmt.Sprintf("%x", after.Root), rep.LogRoot)

	cons, err := audit.BuildConsistencyProof(ctxT(t), src, before.Size, after.Size)
	require.NoError(t, err)
	require.NoError(t, cons.Verify(before.Root, after.Root), "the tree after the record extends the one before it")
	for _, pos := range []uint64{base, fence, retaken, event} {
		p, err := audit.BuildEventProof(ctxT(t), src, pos, 0, keys)
		require.NoError(t, err, pos)
		cp, err := p.Verify(keys)
		require.NoError(t, err, pos)
		assert.Equal(t, after.Root, cp.Root)
	}
	resp, err := httpGet(t, fmt.Sprintf("%s/v1/audit/proof?position=%d", l.HTTPURL(), event))
	require.NoError(t, err)
	var served struct {
		OK bool `json:"ok"`
		audit.EventProof
	}
	require.NoError(t, jsonUnmarshal(resp, &served), "%s", resp)
	require.True(t, served.OK, "%s", resp)
	_, err = served.EventProof.Verify(keys)
	require.NoError(t, err, "GET /v1/audit/proof of the position after the records")

	forged := publishRaw(t, url, jetstore.FenceSubject(0), []byte(`{"format":"creditledger-fence/1"}`))
	msg, err := nc.RequestWithContext(ctxT(t), audit.CheckpointRequestSubject, nil)
	require.NoError(t, err)
	assert.Contains(t, string(msg.Data), `"code":"internal"`, "the publisher signs no history it cannot verify")
	assert.Contains(t, string(msg.Data), fmt.Sprintf("position %d (foreign_fence)", forged))
	rep, err = audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: keys})
	require.NoError(t, err)
	first, ok := rep.First()
	require.True(t, ok)
	assert.Equal(t, audit.KindForeignFence, first.Kind)
	assert.Equal(t, forged, first.Position)
}
