package audit_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
)

func replayAll(t *testing.T, src *audit.Source, f audit.Filter) []audit.Message {
	t.Helper()
	var buf bytes.Buffer
	n, err := audit.Replay(ctxT(t), src, f, &buf)
	require.NoError(t, err)
	var out []audit.Message
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m, err := audit.ParseLine(sc.Bytes())
		require.NoError(t, err)
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, n)
	return out
}

// TestGeneratedHistory replays, exports, verifies and rebuilds thousands of events across many
// accounts, checked against what the command replies said was appended.
func TestGeneratedHistory(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	base := l.Head() // the ownership records the ledger wrote at start, one per partition
	require.Equal(t, uint64(ledger.DefaultPartitions), base)
	early := generate(t, l, "early", 20, 25)
	l.Clock.Advance(time.Hour)
	cut := l.Clock.Now()
	late := generate(t, l, "late", 20, 25)
	want := map[uint64]sent{}
	for p, s := range early.events {
		want[p] = s
	}
	for p, s := range late.events {
		want[p] = s
	}
	require.GreaterOrEqual(t, len(want), 2000)
	nc, src := connect(t, l.ClientURL())

	all := replayAll(t, src, audit.Filter{})
	t.Run("replay is the stream in order, as the commands appended it", func(t *testing.T) {
		require.Len(t, all, int(base)+len(want))
		partitions := map[int]bool{}
		for i, m := range all[:base] {
			require.Equal(t, uint64(i+1), m.Position)
			require.True(t, m.IsFence(), "position %d", m.Position)
			f, err := audit.CheckFence(m, ledger.DefaultPartitions)
			require.NoError(t, err, "position %d", m.Position)
			partitions[f.Partition] = true
		}
		assert.Len(t, partitions, ledger.DefaultPartitions, "one record per partition, before any event")
		for i, m := range all[base:] {
			require.Equal(t, base+uint64(i+1), m.Position)
			ev, err := events.Decode(m.Data)
			require.NoError(t, err)
			w := want[m.Position]
			assert.Equal(t, w, sent{AccountID: ev.AccountID, Version: ev.Version, Type: ev.Type}, "position %d", m.Position)
			assert.Equal(t, jetstore.DefaultSubjects.Of(ev.AccountID), m.Subject)
			assert.True(t, ev.VerifyHash())
		}
		js, err := jetstream.New(l.NC)
		require.NoError(t, err)
		stream, err := js.Stream(ctxT(t), "LEDGER")
		require.NoError(t, err)
		for _, i := range []int{0, int(base), int(base) + 6, len(all) - 1} {
			stored, err := stream.GetMsg(ctxT(t), all[i].Position)
			require.NoError(t, err)
			assert.Equal(t, string(stored.Data), string(all[i].Data), "bytes exactly as stored")
		}
	})
	t.Run("filters", func(t *testing.T) {
		one := replayAll(t, src, audit.Filter{AccountID: "late007"})
		require.Len(t, one, 52)
		for i, m := range one {
			ev, err := events.Decode(m.Data)
			require.NoError(t, err)
			assert.Equal(t, uint64(i+1), ev.Version)
			assert.Equal(t, "late007", ev.AccountID)
		}
		from := replayAll(t, src, audit.Filter{FromPosition: base + 1500})
		require.Len(t, from, len(want)-1499)
		assert.Equal(t, base+1500, from[0].Position)
		before := replayAll(t, src, audit.Filter{Until: cut})
		since := replayAll(t, src, audit.Filter{Since: cut})
		assert.Len(t, before, int(base)+len(early.events), "the start's records (their time is the start's) and the early events")
		assert.Len(t, since, len(late.events))
		assert.Empty(t, replayAll(t, src, audit.Filter{AccountID: "nobody"}))
	})
	t.Run("export round-trips", func(t *testing.T) {
		var jl, cs bytes.Buffer
		n, err := audit.Export(ctxT(t), src, audit.Filter{}, audit.FormatJSONL, &jl)
		require.NoError(t, err)
		require.Equal(t, len(all), n)
		_, err = audit.Export(ctxT(t), src, audit.Filter{}, audit.FormatCSV, &cs)
		require.NoError(t, err)
		back, err := audit.ReadCSV(&cs)
		require.NoError(t, err)
		require.Len(t, back, len(all))
		lines := bytes.Split(bytes.TrimSuffix(jl.Bytes(), []byte("\n")), []byte("\n"))
		require.Len(t, lines, len(all))
		for i := range all {
			fromJSONL, err := audit.ParseLine(lines[i])
			require.NoError(t, err)
			assert.Equal(t, all[i], fromJSONL)
			assert.Equal(t, all[i].Position, back[i].Position)
			assert.Equal(t, all[i].Subject, back[i].Subject)
			assert.True(t, all[i].StoredAt.Equal(back[i].StoredAt))
			assert.Equal(t, string(all[i].Data), string(back[i].Data), "csv row %d rebuilds the stored bytes", i)
		}
		_, err = audit.Export(ctxT(t), src, audit.Filter{}, "xml", &jl)
		assert.ErrorIs(t, err, audit.ErrFormat)
	})
	t.Run("verify passes and its head digest is the signed one", func(t *testing.T) {
		cp := requestCheckpoint(t, nc)
		rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{ledgerKey(t, l)}})
		require.NoError(t, err)
		require.True(t, rep.OK, "%+v", rep.Findings)
		assert.Equal(t, uint64(len(want)), rep.Events)
		assert.Equal(t, base, rep.Fences)
		assert.Equal(t, 40, rep.Accounts)
		assert.Equal(t, base+uint64(len(want)), rep.HeadPosition)
		assert.Equal(t, cp.Size, rep.HeadPosition)
		assert.Equal(t, fmt.Sprintf("%x", cp.Root), rep.LogRoot)
		assert.GreaterOrEqual(t, rep.Checkpoints, 1)
		assert.Empty(t, rep.Warnings)
		one, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{AccountID: "early003"})
		require.NoError(t, err)
		assert.True(t, one.OK)
		assert.Equal(t, uint64(52), one.Events)
	})
	t.Run("rebuild matches the live read models", func(t *testing.T) {
		rep, err := audit.Rebuild(ctxT(t), src, l.Client, ledger.DefaultCatalogue())
		require.NoError(t, err)
		assert.True(t, rep.OK, "%v", rep.Differences)
		assert.Equal(t, 40, rep.Accounts)
		assert.Equal(t, 40*len(projections.AccountQueries)+3, rep.Compared, "every one-account read model, and one page of accounts, totals and payg_contracts")
		assert.GreaterOrEqual(t, rep.Position, base+uint64(len(want)))
	})
}
