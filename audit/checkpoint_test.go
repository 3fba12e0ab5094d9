package audit_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/server"
)

func otherKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// storeCheckpoint publishes a format-1 checkpoint straight into the checkpoint stream.
func storeCheckpoint(t *testing.T, url string, cp audit.Checkpoint) {
	t.Helper()
	storeRaw(t, url, mustJSON(t, cp), cp.Seq-1)
}

// flipBit changes the lowest bit of the first character of s.
func flipBit(s string) string {
	b := []byte(s)
	b[0] ^= 1
	return string(b)
}

func TestCheckpointsArePublishedSignedAndConsistent(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, func(c *server.Config) { c.Checkpoints.Every = 5 })
	generate(t, l, "c", 3, 2)
	_, src := connect(t, l.ClientURL())
	require.Eventually(t, func() bool {
		all, err := src.Checkpoints(ctxT(t))
		return err == nil && len(all) >= 3
	}, 20*time.Second, 20*time.Millisecond)

	keyFile := filepath.Join(l.DataDir, audit.DefaultKeyFileName)
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the signing key is private to its owner")
	pub := ledgerKey(t, l)
	vkey, err := audit.VerifierKey(audit.DefaultOrigin, pub)
	require.NoError(t, err)
	published, err := os.ReadFile(audit.VerifierKeyFile(keyFile))
	require.NoError(t, err)
	assert.Equal(t, vkey+"\n", string(published), "the verifier key is published beside the key")
	fromFile, err := audit.ReadPublicKey(audit.VerifierKeyFile(keyFile))
	require.NoError(t, err)
	assert.True(t, pub.Equal(fromFile))

	first := requestCheckpoint(t, l.NC)
	_, err = audit.ParseLogCheckpoint(first.Note, []ed25519.PublicKey{pub})
	require.NoError(t, err)
	assert.Equal(t, l.Head(), first.Size)
	assert.Equal(t, audit.DefaultOrigin, first.Origin)

	l.Restart(t)
	generate(t, l, "d", 1, 1)
	assert.Equal(t, pub, ledgerKey(t, l), "the key survives a restart")
	next := requestCheckpoint(t, l.NC)
	assert.Greater(t, next.Size, first.Size)
	_, src = connect(t, l.ClientURL())
	all, err := src.Checkpoints(ctxT(t))
	require.NoError(t, err)
	for i, s := range all {
		require.NoError(t, s.Err)
		require.NotNil(t, s.Log, "checkpoint %d is a signed tlog note", s.Seq)
		assert.Equal(t, vkey, s.VerifierKey)
		if i > 0 {
			assert.Greater(t, s.Log.Size, all[i-1].Log.Size, "never two checkpoints of one head")
		}
	}
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, len(all), rep.Checkpoints)
	assert.Equal(t, []string{audit.DefaultOrigin + "+" + audit.KeyHashHex(first.KeyHash)}, rep.KeyIDs)
	assert.True(t, rep.KeyPinned)
	unpinned, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, unpinned.OK, "%v", unpinned.Findings)
	assert.Contains(t, unpinned.Warnings[len(unpinned.Warnings)-1], "not pinned")
}

func TestCheckpointSignedWithAnotherKeyIsRejected(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	generate(t, l, "k", 2, 1)
	genuine := legacyCheckpoint(t, l, nil) // format 1: old checkpoints keep verifying
	pub := ledgerKey(t, l)

	forged := genuine
	forged.Seq, forged.Prev, forged.Time = genuine.Seq+1, genuine.Digest(), genuine.Time.Add(time.Second)
	forged.Sign(otherKey(t))
	require.NoError(t, forged.VerifySignature(nil), "it is a well-formed signature, by another key")
	assert.ErrorIs(t, forged.VerifySignature([]ed25519.PublicKey{pub}), audit.ErrUntrustedKey)

	impostor := forged
	impostor.PublicKey, impostor.KeyID = genuine.PublicKey, genuine.KeyID
	assert.ErrorIs(t, impostor.VerifySignature([]ed25519.PublicKey{pub}), audit.ErrBadSignature, "naming the ledger's key does not help")

	storeCheckpoint(t, l.ClientURL(), forged)
	_, src := connect(t, l.ClientURL())
	for name, opts := range map[string]audit.VerifyOptions{
		"pinned key":            {PublicKeys: []ed25519.PublicKey{pub}},
		"trust on first use":    {},
		"pinned by trusted cp":  {Trusted: &genuine},
		"trusted cp and pinned": {Trusted: &genuine, PublicKeys: []ed25519.PublicKey{pub}},
	} {
		rep, err := audit.Verify(ctxT(t), src, opts)
		require.NoError(t, err, name)
		require.False(t, rep.OK, name)
		first, _ := rep.First()
		assert.Equal(t, audit.KindCheckpointSignature, first.Kind, name)
		assert.Equal(t, forged.Seq, first.Checkpoint, name)
		assert.Contains(t, first.Reason, "untrusted key", name)
	}
	// A trusted checkpoint signed by another key is refused too.
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{Trusted: &forged, PublicKeys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	first, _ := rep.First()
	assert.Equal(t, audit.KindCheckpointSignature, first.Kind)
}

func TestCheckpointWithADigestAlteredByOneBitIsRejected(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	generate(t, l, "b", 2, 1)
	genuine := legacyCheckpoint(t, l, nil)
	keys := []ed25519.PublicKey{ledgerKey(t, l)}
	require.NoError(t, genuine.VerifySignature(keys))

	for name, alter := range map[string]func(*audit.Checkpoint){
		"accounts_root": func(c *audit.Checkpoint) { c.AccountsRoot = flipBit(c.AccountsRoot) },
		"log_digest":    func(c *audit.Checkpoint) { c.LogDigest = flipBit(c.LogDigest) },
		"prev":          func(c *audit.Checkpoint) { c.Prev = flipBit(c.Prev) },
		"position":      func(c *audit.Checkpoint) { c.Position ^= 1 },
		"accounts":      func(c *audit.Checkpoint) { c.Accounts ^= 1 },
		"time":          func(c *audit.Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		"seq":           func(c *audit.Checkpoint) { c.Seq ^= 2 },
	} {
		c := genuine
		alter(&c)
		assert.ErrorIs(t, c.VerifySignature(keys), audit.ErrBadSignature, name)
		assert.ErrorIs(t, c.VerifySignature(nil), audit.ErrBadSignature, name)
	}

	// Stored as the next checkpoint, and given as the trusted one, it is reported.
	signer, _, err := audit.LoadOrCreateKey(filepath.Join(l.DataDir, audit.DefaultKeyFileName), false)
	require.NoError(t, err)
	altered := genuine // the next checkpoint, signed by the ledger's key, then one bit of its root flipped
	altered.Seq, altered.Prev = genuine.Seq+1, genuine.Digest()
	altered.Sign(signer)
	require.NoError(t, altered.VerifySignature(keys))
	altered.AccountsRoot = flipBit(altered.AccountsRoot)
	storeCheckpoint(t, l.ClientURL(), altered)
	_, src := connect(t, l.ClientURL())
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: keys})
	require.NoError(t, err)
	first, ok := rep.First()
	require.True(t, ok)
	assert.Equal(t, audit.KindCheckpointSignature, first.Kind)
	assert.Equal(t, altered.Seq, first.Checkpoint)

	trusted := genuine
	trusted.AccountsRoot = flipBit(trusted.AccountsRoot)
	rep, err = audit.Verify(ctxT(t), src, audit.VerifyOptions{Trusted: &trusted})
	require.NoError(t, err)
	assert.False(t, rep.OK)
	kinds := map[string]bool{}
	for _, f := range rep.Findings {
		kinds[f.Kind] = true
	}
	assert.True(t, kinds[audit.KindCheckpointSignature], "%v", rep.Findings)
}

func TestTrustedCheckpointPassesOnAnUntouchedStore(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	generate(t, l, "t", 3, 1)
	cp := legacyCheckpoint(t, l, nil)
	generate(t, l, "u", 2, 1)
	cp2 := requestCheckpoint(t, l.NC) // format 2 after format 1: a mixed checkpoint stream
	generate(t, l, "v", 1, 1)
	_, src := connect(t, l.ClientURL())
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{Trusted: &cp})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, cp.Seq, rep.Trusted)
	assert.True(t, rep.KeyPinned)
	assert.Equal(t, 3, rep.Checkpoints, "the trusted copy and the two stored ones")
	assert.Greater(t, rep.HeadPosition, cp.Position)

	rep, err = audit.Verify(ctxT(t), src, audit.VerifyOptions{TrustedLog: &cp2, PublicKeys: []ed25519.PublicKey{ledgerKey(t, l)}})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, uint64(2), rep.Trusted)
	assert.Equal(t, 3, rep.Checkpoints)
}

func TestInclusionProofOfEveryAccount(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	generate(t, l, "p", 5, 1)
	cp := legacyCheckpoint(t, l, nil)
	generate(t, l, "q", 1, 1) // after the checkpoint: not in it
	keys := []ed25519.PublicKey{ledgerKey(t, l)}
	_, src := connect(t, l.ClientURL())
	for _, acc := range []string{"p000", "p001", "p002", "p003", "p004"} {
		p, err := audit.BuildProof(ctxT(t), src, acc, cp.Seq, keys)
		require.NoError(t, err, acc)
		assert.Equal(t, cp, p.Checkpoint)
		assert.Equal(t, uint64(4), p.Leaf.Version)
		require.NoError(t, p.Verify(keys), acc)

		var back audit.Proof
		require.NoError(t, json.Unmarshal(mustJSON(t, p), &back))
		require.NoError(t, back.Verify(keys), "the printed proof verifies")

		bad := p
		bad.Leaf.Version++
		bad.LeafHash = ""
		assert.ErrorIs(t, bad.Verify(keys), audit.ErrProofInvalid, "another head is not in the tree")
		assert.ErrorIs(t, p.Verify([]ed25519.PublicKey{otherKey(t).Public().(ed25519.PublicKey)}), audit.ErrUntrustedKey)
	}
	_, err := audit.BuildProof(ctxT(t), src, "q000", cp.Seq, keys)
	assert.ErrorIs(t, err, audit.ErrAccountUnknown)
	latest, err := audit.BuildProof(ctxT(t), src, "p000", 0, keys)
	require.NoError(t, err)
	assert.Equal(t, cp.Seq, latest.Checkpoint.Seq)
}

func TestSigningKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", audit.DefaultKeyFileName)
	_, _, err := audit.LoadOrCreateKey(path, false)
	require.Error(t, err, "a named key must exist")
	key, created, err := audit.LoadOrCreateKey(path, true)
	require.NoError(t, err)
	assert.True(t, created)
	again, created, err := audit.LoadOrCreateKey(path, true)
	require.NoError(t, err)
	assert.False(t, created)
	assert.True(t, key.Equal(again))
	pub, err := audit.ReadPublicKey(audit.PublicKeyFile(path))
	require.NoError(t, err)
	assert.True(t, pub.Equal(key.Public()))
	require.NoError(t, os.Chmod(path, 0o644))
	_, _, err = audit.LoadOrCreateKey(path, true)
	assert.ErrorContains(t, err, "chmod 600")
}

func TestCheckpointsEveryIntervalWhenThereAreNewEvents(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t, func(c *server.Config) {
		c.Checkpoints.Every, c.Checkpoints.Interval = -1, 20*time.Millisecond
	})
	_, src := connect(t, l.ClientURL())
	base := l.Head() // the ownership records the ledger wrote at start
	generate(t, l, "i", 1, 1)
	require.Eventually(t, func() bool {
		cp, err := src.StoredCheckpoint(ctxT(t), 0)
		return err == nil && cp.Position() == base+4
	}, 10*time.Second, 10*time.Millisecond)
	first, err := src.StoredCheckpoint(ctxT(t), 0)
	require.NoError(t, err)
	generate(t, l, "j", 1, 0)
	require.Eventually(t, func() bool {
		cp, err := src.StoredCheckpoint(ctxT(t), 0)
		return err == nil && cp.Position() == base+6
	}, 10*time.Second, 10*time.Millisecond)
	all, err := src.Checkpoints(ctxT(t))
	require.NoError(t, err)
	require.Greater(t, len(all), int(first.Seq))
	for i := 1; i < len(all); i++ {
		assert.Greater(t, all[i].Position(), all[i-1].Position(), "a tick with no new events signs nothing")
	}
}
