package natsconn_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/natsconn"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := filepath.Join(dir, "f.pem")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o600))
	bad := map[string]natsconn.Options{
		"two credentials":       {User: "u", CredsFile: f},
		"password without user": {Password: "p"},
		"cert without key":      {TLSCert: f},
		"key without cert":      {TLSKey: f},
		"missing CA file":       {TLSCA: filepath.Join(dir, "nope.pem")},
		"missing creds file":    {CredsFile: filepath.Join(dir, "nope.creds")},
	}
	for name, o := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := o.NATSOptions()
			assert.ErrorIs(t, err, natsconn.ErrConfig)
		})
	}
	opts, err := natsconn.Options{User: "u", Password: "p", TLSCA: f}.NATSOptions()
	require.NoError(t, err)
	assert.Len(t, opts, 3, "user info, root CAs, secure")
	opts, err = natsconn.Options{}.NATSOptions()
	require.NoError(t, err)
	assert.Empty(t, opts)
}
