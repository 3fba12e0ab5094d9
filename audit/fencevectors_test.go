package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// The ownership record vectors (docs/FORMAT.md §8): testdata/fences.jsonl is an export (audit
// export --format jsonl) of six messages, the first three and the fifth of envelopes.json's
// events with a partition's ownership record at position 3; testdata/fences.json its leaf
// hashes, roots, proofs across the record, and messages on fence subjects that are no
// ownership record; testdata/fences-checkpoint.txt the checkpoint of all six, signed with the
// vector key. They add to the vectors of vectors_test.go and change none of them.

// fenceVectorPartitions is the partition count of the vectors' stream.
const fenceVectorPartitions = 64

// vectorFence is ledger's own pinned record (ledger/fence_test.go), the one FORMAT.md shows.
const vectorFence = `{"format":"creditledger-fence/1","lease_revision":42,"owner":"node-b","partition":17,"partitions":64,"time":"2026-11-28T21:00:00.123456789Z"}`

type vectorFenceFile struct {
	Partitions int `json:"partitions"`
	Fence      struct {
		Position uint64 `json:"position"`
		Subject  string `json:"subject"`
		Stored   string `json:"stored"`
		LeafHash string `json:"leaf_hash"`
	} `json:"fence"`
	vectorTree
	// Foreign are messages on fence subjects that a verifier must not take for ownership
	// records, each with why.
	Foreign []vectorForeign `json:"foreign"`
}

type vectorForeign struct {
	Subject string `json:"subject"`
	Stored  string `json:"stored"`
	Why     string `json:"why"`
}

// fenceVectorMessages is the exported history: acme 1, acme 2, the record, acme 3, globex 1,
// acme 4 (envelopes.json positions 1, 2, 3, 4, 5 renumbered around the record).
func fenceVectorMessages(t *testing.T) []audit.Message {
	t.Helper()
	evs := buildVectorEvents(t)
	record := audit.Message{Subject: jetstore.FenceSubject(17), Data: []byte(vectorFence)}
	msgs := []audit.Message{evs[0], evs[1], record, evs[2], evs[3], evs[4]}
	at := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	for i := range msgs {
		msgs[i].Position = uint64(i + 1)
		msgs[i].StoredAt = at.Add(time.Duration(i) * 250 * time.Millisecond)
	}
	return msgs
}

func fenceVectorForeign() []vectorForeign {
	other := strings.Replace(vectorFence, `"partition":17`, `"partition":18`, 1)
	count := strings.Replace(vectorFence, `"partitions":64`, `"partitions":65`, 1)
	spaced := strings.Replace(vectorFence, `,"owner"`, `, "owner"`, 1)
	escaped := strings.Replace(vectorFence, `"node-b"`, `"node\u002db"`, 1)
	fraction := strings.Replace(vectorFence, `.123456789Z`, `.123456780Z`, 1)
	extra := strings.Replace(vectorFence, `{"format"`, `{"extra":1,"format"`, 1)
	return []vectorForeign{
		{jetstore.FenceSubject(17), other, "names partition 18 under partition 17's subject"},
		{jetstore.FenceSubject(17), count, "counts 65 partitions, the stream 64"},
		{jetstore.FenceSubject(17), spaced, "not in RFC 8785 form (a space)"},
		{jetstore.FenceSubject(17), escaped, "not in RFC 8785 form (an escaped character)"},
		{jetstore.FenceSubject(17), fraction, "not in its one stored form (a trailing zero in the fraction of a second)"},
		{jetstore.FenceSubject(17), extra, "an unknown member"},
		{jetstore.FenceSubject(17), strings.Replace(vectorFence, "fence/1", "fence/2", 1), "another format"},
		{jetstore.FencePrefix + "017", vectorFence, "a subject that is not partition 17's (a leading zero)"},
		{"ledger.events.acme", vectorFence, "not on a fence subject: an undecodable event"},
	}
}

func TestFenceVectors(t *testing.T) {
	msgs := fenceVectorMessages(t)
	var v vectorFenceFile
	v.Partitions = fenceVectorPartitions
	v.Fence.Position, v.Fence.Subject, v.Fence.Stored = 3, msgs[2].Subject, vectorFence
	leaf := audit.LogLeafHash([]byte(vectorFence))
	v.Fence.LeafHash = hex.EncodeToString(leaf[:])
	v.Foreign = fenceVectorForeign()
	n := uint64(len(msgs))
	v.Inclusion.LeafIndex, v.Inclusion.TreeSize = 3, n // position 4: the event right after the record
	v.Consistency.Size1, v.Consistency.Size2 = 2, n    // from before the record to after it
	tree := audit.NewLogTree()
	require.NoError(t, tree.WatchInclusion(v.Inclusion.LeafIndex, n))
	require.NoError(t, tree.WatchConsistency(v.Consistency.Size1, n))
	var export []byte
	for _, m := range msgs {
		export = audit.AppendLine(export, m)
		l := audit.LogLeafHash(m.Data)
		tree.Append(l)
		r := tree.Root()
		v.LeafHashes = append(v.LeafHashes, hex.EncodeToString(l[:]))
		v.Roots = append(v.Roots, hex.EncodeToString(r[:]))
	}
	incl, err := tree.InclusionProof(v.Inclusion.LeafIndex)
	require.NoError(t, err)
	cons, err := tree.ConsistencyProof(v.Consistency.Size1)
	require.NoError(t, err)
	v.Inclusion.Path, v.Consistency.Path = hexList(incl), hexList(cons)
	note, err := audit.SignLogCheckpoint(vectorOrigin, n, tree.Root(), vectorKey())
	require.NoError(t, err)
	files := map[string][]byte{
		"fences.jsonl":          export,
		"fences.json":           indentJSON(t, v),
		"fences-checkpoint.txt": note,
	}
	if *updateVectors {
		for name, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(vectorDir, name), b, 0o644))
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		require.NoError(t, err, "run go test ./audit -run TestFenceVectors -update-vectors")
		assert.Equal(t, string(want), string(got), "testdata/%s: the code no longer produces these bytes", name)
	}
	checkFenceVectors(t)
}

// checkFenceVectors reads the files as an auditor would: the export verifies with one ownership
// record and five events, the tree and proofs match, the checkpoint signs the root, and none of
// the foreign messages is taken for a record.
func checkFenceVectors(t *testing.T) {
	var v vectorFenceFile
	readJSON(t, "fences.json", &v)
	export, err := os.ReadFile(filepath.Join(vectorDir, "fences.jsonl"))
	require.NoError(t, err)
	chain := audit.NewChain()
	chain.SetPartitions(v.Partitions)
	var leaves [][32]byte
	for _, line := range bytes.Split(bytes.TrimSuffix(export, []byte("\n")), []byte("\n")) {
		m, err := audit.ParseLine(line)
		require.NoError(t, err)
		require.Empty(t, chain.Apply(m), "position %d", m.Position)
		leaves = append(leaves, audit.LogLeafHash(m.Data))
		if m.Position == v.Fence.Position {
			assert.Equal(t, v.Fence.Subject, m.Subject)
			assert.Equal(t, v.Fence.Stored, string(m.Data))
		}
	}
	assert.Equal(t, uint64(1), chain.Fences())
	assert.Equal(t, uint64(5), chain.Events())
	assert.Equal(t, 2, chain.Accounts())
	require.Len(t, leaves, len(v.LeafHashes))
	for i, l := range leaves {
		assert.Equal(t, v.LeafHashes[i], hex.EncodeToString(l[:]))
	}
	n := uint64(len(leaves))
	root := chain.Tree().Root()
	assert.Equal(t, v.Roots[n-1], hex.EncodeToString(root[:]))
	require.NoError(t, audit.VerifyLogInclusion(leaves[v.Inclusion.LeafIndex], v.Inclusion.LeafIndex, n, unhexList(t, v.Inclusion.Path), root))
	c := v.Consistency
	require.NoError(t, audit.VerifyLogConsistency(c.Size1, c.Size2, unhexList(t, c.Path), unhex(t, v.Roots[c.Size1-1]), root))

	_, pub, err := audit.ParseVerifierKey(readVectorFile(t, "checkpoint.vkey"))
	require.NoError(t, err)
	cp, err := audit.ParseLogCheckpoint([]byte(readVectorFile(t, "fences-checkpoint.txt")), []ed25519.PublicKey{pub})
	require.NoError(t, err)
	assert.Equal(t, n, cp.Size)
	assert.Equal(t, root, cp.Root)

	for _, f := range v.Foreign {
		_, err := audit.CheckFence(audit.Message{Subject: f.Subject, Data: []byte(f.Stored)}, v.Partitions)
		assert.Error(t, err, f.Why)
		one := audit.NewChain()
		one.SetPartitions(v.Partitions)
		fs := one.Apply(audit.Message{Position: 1, Subject: f.Subject, Data: []byte(f.Stored)})
		require.Len(t, fs, 1, f.Why)
		want := audit.KindForeignFence
		if !strings.HasPrefix(f.Subject, jetstore.FencePrefix) {
			want = audit.KindUndecodable
		}
		assert.Equal(t, want, fs[0].Kind, f.Why)
	}
}

// The independent verifier checks the same vectors, verifies the export against its checkpoint,
// and fails on an export whose record was altered by one byte.
func TestFenceVectorsVerifyInPython(t *testing.T) {
	t.Parallel()
	py := pythonVerifier(t)
	script := "../docs/examples/verify.py"
	out, err := exec.Command(py, script, "vectors", vectorDir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "1 ownership record")
	export := filepath.Join(vectorDir, "fences.jsonl")
	cp, vkey := filepath.Join(vectorDir, "fences-checkpoint.txt"), filepath.Join(vectorDir, "checkpoint.vkey")
	out, err = exec.Command(py, script, "export", export, cp, vkey, "64").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "OK: 5 events, 1 ownership records, 2 accounts; positions 1 to 6")

	data, err := os.ReadFile(export)
	require.NoError(t, err)
	dir := t.TempDir()
	for name, edit := range map[string]func(string) string{
		"lease revision": func(s string) string { return strings.Replace(s, `"lease_revision":42`, `"lease_revision":43`, 1) },
		"partition":      func(s string) string { return strings.Replace(s, `"partition":17`, `"partition":18`, 1) },
		"not canonical":  func(s string) string { return strings.Replace(s, `,"owner"`, `, "owner"`, 1) },
		"subject":        func(s string) string { return strings.Replace(s, `"ledger.fence.17"`, `"ledger.fence.18"`, 1) },
		// The vectors are an older store's (account subjects): one event under a partitioned
		// subject, even its own partition of 64, mixes the schemes.
		"event subject": func(s string) string {
			return strings.Replace(s, `"ledger.events.globex"`, `"ledger.events.14.globex"`, 1)
		},
	} {
		tampered := edit(string(data))
		require.NotEqual(t, string(data), tampered, name)
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".jsonl")
		require.NoError(t, os.WriteFile(file, []byte(tampered), 0o600))
		out, err := exec.Command(py, script, "export", file, cp, vkey, "64").CombinedOutput()
		require.Error(t, err, "%s: %s", name, out)
		assert.Contains(t, string(out), "FAILED", name)
	}
	out, err = exec.Command(py, script, "export", export, cp, vkey, "65").CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "position 3", "another partition count names the record")
}

func hexList(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

func unhex(t *testing.T, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	require.Len(t, b, 32)
	var out [32]byte
	copy(out[:], b)
	return out
}

func unhexList(t *testing.T, ss []string) [][32]byte {
	t.Helper()
	out := make([][32]byte, len(ss))
	for i, s := range ss {
		out[i] = unhex(t, s)
	}
	return out
}

func readVectorFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	require.NoError(t, err)
	return string(b)
}
