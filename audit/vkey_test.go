package audit_test

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
)

// The published verifier key follows the origin the checkpoints are signed under: its name is
// the origin, so a file left from an earlier --checkpoint-origin names no signature of the new
// checkpoints (a verifier following docs/FORMAT.md matches name and key hash) and is replaced.
func TestVerifierKeyFileFollowsTheOrigin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := audit.VerifierKeyFile(filepath.Join(dir, audit.DefaultKeyFileName))
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	vkey := func(origin string) string {
		v, err := audit.VerifierKey(origin, pub)
		require.NoError(t, err)
		return v
	}
	read := func() string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(b)
	}
	require.NoError(t, audit.WriteVerifierKey(path, vkey(audit.DefaultOrigin)))
	assert.Equal(t, vkey(audit.DefaultOrigin)+"\n", read())
	require.NoError(t, audit.WriteVerifierKey(path, vkey(audit.DefaultOrigin)), "unchanged: nothing to do")

	const origin = "example.com/ledger-eu"
	require.NoError(t, audit.WriteVerifierKey(path, vkey(origin)))
	assert.Equal(t, vkey(origin)+"\n", read(), "the origin changed: the file names the new one")
	name, got, err := audit.ParseVerifierKey(read())
	require.NoError(t, err)
	assert.Equal(t, origin, name)
	assert.True(t, pub.Equal(got))
	note, err := audit.SignLogCheckpoint(origin, 1, audit.LogLeafHash([]byte("x")), key)
	require.NoError(t, err)
	cp, err := audit.ParseLogCheckpoint(note, []ed25519.PublicKey{got})
	require.NoError(t, err)
	assert.Equal(t, name+"+"+audit.KeyHashHex(cp.KeyHash), read()[:len(name)+9], "name and key hash are the signature's")

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left")
}
