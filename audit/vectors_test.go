package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/events"
)

// The test vectors in testdata/ at the repository root are what docs/FORMAT.md's worked example
// and an auditor in another language check against. These tests check the code against them,
// so a change that alters one byte of a hash rule, a tree or a checkpoint fails here.
// go test ./audit -run TestVectors -update-vectors rewrites them (then review the diff!).
var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/ from the code")

const vectorDir = "../testdata"

// vectorEnvelope is one stored event with what its hash rule hashes.
type vectorEnvelope struct {
	Position uint64 `json:"position"`
	Subject  string `json:"subject"`
	HashRule string `json:"hash_rule"`
	// Stored is the message exactly as stored; Canonical the bytes its hash is SHA-256 of.
	Stored    string `json:"stored"`
	Canonical string `json:"canonical"`
	Hash      string `json:"hash"`
}

type vectorTree struct {
	// LeafHashes[i] is SHA-256(0x00 || stored bytes of position i+1).
	LeafHashes []string `json:"leaf_hashes"`
	// Roots[n-1] is the root of the tree of the first n leaves.
	Roots     []string `json:"roots"`
	Inclusion struct {
		LeafIndex uint64   `json:"leaf_index"`
		TreeSize  uint64   `json:"tree_size"`
		Path      []string `json:"path"`
	} `json:"inclusion"`
	Consistency struct {
		Size1 uint64   `json:"size1"`
		Size2 uint64   `json:"size2"`
		Path  []string `json:"path"`
	} `json:"consistency"`
}

// legacyVectors were written by the ledger before RFC 8785 (events under the legacy rule).
var legacyVectors = []string{
	`{"event_id":"0194b7c2-0000-7000-8000-000000000001","type":"LicenseActivated","schema_version":1,"account_id":"acme","version":1,"occurred_at":"2026-01-15T10:00:01Z","command_id":"c-\u003c1\u003e","correlation_id":"","payload":{"license_id":"L-1 \u003c\u0026\u003e","activated_at":"2026-01-15T10:00:00Z"},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0bce39a8cb5984ea6d2fe5f6fe74a2b97245b916093fc6d1c06ae4deedcfe10c"}`,
	`{"event_id":"0194b7c2-0000-7000-8000-000000000002","type":"AutoRenewSet","schema_version":1,"account_id":"acme","version":2,"occurred_at":"2026-01-15T10:00:02Z","command_id":"c-2","correlation_id":"","payload":{"license_id":"L-1 \u003c\u0026\u003e","enabled":false},"prev_hash":"0bce39a8cb5984ea6d2fe5f6fe74a2b97245b916093fc6d1c06ae4deedcfe10c","hash":"df0ff10ecb1582b9180759dffaa928acdbd73a37922586b4e0a2229206b1e77e"}`,
}

// vectorKey is the test vectors' signing key: its seed is public, so it signs nothing real.
func vectorKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("creditledger test vector key (public: never use it to sign anything real)"))
	return ed25519.NewKeyFromSeed(seed[:])
}

const vectorOrigin = "example.com/creditledger/test-vectors"

// buildVectorEvents appends five RFC 8785 events after the two legacy ones: acme goes on from
// its legacy chain (a store mixing both rules), globex starts under the new rule.
func buildVectorEvents(t *testing.T) []audit.Message {
	t.Helper()
	var msgs []audit.Message
	prev := map[string]string{"acme": events.ZeroHash, "globex": events.ZeroHash}
	add := func(data []byte) {
		ev, err := events.Decode(data)
		require.NoError(t, err)
		prev[ev.AccountID] = ev.Hash
		msgs = append(msgs, audit.Message{Position: uint64(len(msgs) + 1), Subject: "ledger.events." + ev.AccountID, Data: data})
	}
	for _, s := range legacyVectors {
		add([]byte(s))
	}
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	payloads := []struct {
		account string
		p       events.Payload
	}{
		{"acme", events.CreditsAllocated{Feature: "file_security", Credits: dec(t, "12.5")}},
		{"globex", events.LicensePurchased{LicenseID: "G-1", Source: "sales", Credits: dec(t, "1500"), TermMonths: 12, AutoRenew: true,
			ContractStart: at, PurchasedAt: at, ExpiresAt: at.AddDate(1, 0, 0)}},
		{"acme", events.CreditsReleased{Feature: "file_security", Credits: dec(t, "2.5"), Reason: "requested"}},
		{"globex", events.LicenseActivated{LicenseID: "G-1", ActivatedAt: at.Add(time.Minute)}},
		{"globex", events.AutoRenewSet{LicenseID: "G-1", Enabled: false}},
	}
	version := map[string]uint64{"acme": 2}
	for i, x := range payloads {
		raw, err := events.EncodePayload(x.p)
		require.NoError(t, err)
		version[x.account]++
		e := events.Envelope{EventID: fmt.Sprintf("0194b7c2-0000-7000-8000-0000000001%02d", i), Type: x.p.EventType(),
			SchemaVersion: 1, AccountID: x.account, Version: version[x.account], OccurredAt: at.Add(time.Duration(i+3) * time.Second),
			CommandID: fmt.Sprintf("cmd-%d", i+3), CommandHash: fmt.Sprintf("%032x", i+3), CorrelationID: "Zürich €5 <ok>",
			Payload: raw, PrevHash: prev[x.account]}
		data, err := e.SealEncode()
		require.NoError(t, err)
		add(data)
	}
	return msgs
}

func TestVectors(t *testing.T) {
	msgs := buildVectorEvents(t)
	// Envelopes: canonical bytes and hashes.
	var envs []vectorEnvelope
	chain := audit.NewChain()
	for _, m := range msgs {
		require.Empty(t, chain.Apply(m), "the vector history verifies")
		ev, err := events.Decode(m.Data)
		require.NoError(t, err)
		canonical := legacyCanonical(t, m.Data)
		if ev.HashRule == events.HashRuleJCS {
			b, err := events.CanonicalStored(m.Data)
			require.NoError(t, err)
			canonical = string(b)
		}
		sum := sha256.Sum256([]byte(canonical))
		require.Equal(t, ev.Hash, hex.EncodeToString(sum[:]), "position %d: the hash is SHA-256 of the canonical bytes", m.Position)
		envs = append(envs, vectorEnvelope{Position: m.Position, Subject: m.Subject, HashRule: ev.HashRule,
			Stored: string(m.Data), Canonical: canonical, Hash: ev.Hash})
	}
	// The tree: every root, an inclusion and a consistency proof.
	var tr vectorTree
	tree := audit.NewLogTree()
	n := uint64(len(msgs))
	tr.Inclusion.LeafIndex, tr.Inclusion.TreeSize = 4, n
	tr.Consistency.Size1, tr.Consistency.Size2 = 3, n
	require.NoError(t, tree.WatchInclusion(tr.Inclusion.LeafIndex, n))
	require.NoError(t, tree.WatchConsistency(tr.Consistency.Size1, n))
	for _, m := range msgs {
		l := audit.LogLeafHash(m.Data)
		tree.Append(l)
		tr.LeafHashes = append(tr.LeafHashes, hex.EncodeToString(l[:]))
		r := tree.Root()
		tr.Roots = append(tr.Roots, hex.EncodeToString(r[:]))
	}
	incl, err := tree.InclusionProof(tr.Inclusion.LeafIndex)
	require.NoError(t, err)
	cons, err := tree.ConsistencyProof(tr.Consistency.Size1)
	require.NoError(t, err)
	for _, h := range incl {
		tr.Inclusion.Path = append(tr.Inclusion.Path, hex.EncodeToString(h[:]))
	}
	for _, h := range cons {
		tr.Consistency.Path = append(tr.Consistency.Path, hex.EncodeToString(h[:]))
	}
	// The checkpoint of the whole tree, and the verifier key.
	key := vectorKey()
	note, err := audit.SignLogCheckpoint(vectorOrigin, n, tree.Root(), key)
	require.NoError(t, err)
	vkey, err := audit.VerifierKey(vectorOrigin, key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	files := map[string][]byte{
		"envelopes.json":  indentJSON(t, envs),
		"tree.json":       indentJSON(t, tr),
		"checkpoint.txt":  note,
		"checkpoint.vkey": []byte(vkey + "\n"),
		"checkpoint.seed": []byte(hex.EncodeToString(key.Seed()) + "\n"),
	}
	if *updateVectors {
		for name, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(vectorDir, name), b, 0o644))
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		require.NoError(t, err, "run go test ./audit -run TestVectors -update-vectors")
		assert.Equal(t, string(got), string(want), "testdata/%s: the code no longer produces these bytes", name)
	}
	checkVectorsIndependently(t)
}

// checkVectorsIndependently checks the files against each other with the library's verifiers
// only, as an outside verifier would: hashes, proofs, and the checkpoint's signature.
func checkVectorsIndependently(t *testing.T) {
	var envs []vectorEnvelope
	var tr vectorTree
	readJSON(t, "envelopes.json", &envs)
	readJSON(t, "tree.json", &tr)
	for i, e := range envs {
		sum := sha256.Sum256([]byte(e.Canonical))
		assert.Equal(t, e.Hash, hex.EncodeToString(sum[:]))
		leaf := audit.LogLeafHash([]byte(e.Stored))
		assert.Equal(t, tr.LeafHashes[i], hex.EncodeToString(leaf[:]))
	}
	h := func(s string) [32]byte {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		var out [32]byte
		copy(out[:], b)
		return out
	}
	hs := func(ss []string) [][32]byte {
		out := make([][32]byte, len(ss))
		for i, s := range ss {
			out[i] = h(s)
		}
		return out
	}
	n := tr.Inclusion.TreeSize
	require.NoError(t, audit.VerifyLogInclusion(h(tr.LeafHashes[tr.Inclusion.LeafIndex]), tr.Inclusion.LeafIndex, n, hs(tr.Inclusion.Path), h(tr.Roots[n-1])))
	c := tr.Consistency
	require.NoError(t, audit.VerifyLogConsistency(c.Size1, c.Size2, hs(c.Path), h(tr.Roots[c.Size1-1]), h(tr.Roots[c.Size2-1])))
	vkey, err := os.ReadFile(filepath.Join(vectorDir, "checkpoint.vkey"))
	require.NoError(t, err)
	name, pub, err := audit.ParseVerifierKey(string(vkey))
	require.NoError(t, err)
	assert.Equal(t, vectorOrigin, name)
	note, err := os.ReadFile(filepath.Join(vectorDir, "checkpoint.txt"))
	require.NoError(t, err)
	cp, err := audit.ParseLogCheckpoint(note, []ed25519.PublicKey{pub})
	require.NoError(t, err)
	assert.Equal(t, n, cp.Size)
	assert.Equal(t, h(tr.Roots[n-1]), cp.Root)
	// One changed byte of the note breaks its signature.
	bad := []byte(strings.Replace(string(note), "\n7\n", "\n8\n", 1))
	_, err = audit.ParseLogCheckpoint(bad, []ed25519.PublicKey{pub})
	assert.Error(t, err)
}

// legacyCanonical is what the legacy rule hashes: the stored bytes without the final
// ,"hash":"..." member (the legacy stored form is Go's encoding with hash last).
func legacyCanonical(t *testing.T, stored []byte) string {
	t.Helper()
	s := string(stored)
	i := strings.LastIndex(s, `,"hash":"`)
	require.Positive(t, i)
	return s[:i] + "}"
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return buf.Bytes()
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	require.NoError(t, err)
	return d
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// pythonVerifier says whether docs/examples/verify.py can run here (python3 with cryptography).
func pythonVerifier(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import cryptography").Run() != nil {
		t.Skip("python3 with the cryptography package is not installed")
	}
	return py
}

// The independent verifier in docs/examples/verify.py, written from docs/FORMAT.md without the
// ledger's code, reproduces every hash, root and proof of the vectors and verifies the checkpoint.
func TestVectorsVerifyInPython(t *testing.T) {
	t.Parallel()
	py := pythonVerifier(t)
	out, err := exec.Command(py, "../docs/examples/verify.py", "vectors", vectorDir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "OK: 7 envelopes")
	assert.Contains(t, string(out), fmt.Sprintf("%d event subjects", 2*len(subjectVectors(t).Partitioned)))
}
