package natsconn_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nkeys"
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
	assert.Len(t, opts, 4, "user info, root CAs, secure, the user's inbox prefix")
	opts, err = natsconn.Options{}.NATSOptions()
	require.NoError(t, err)
	assert.Empty(t, opts)
}

// TestInboxPrefix: a client connects with the inbox prefix the access config gives its user, so
// the CLI and Go callers receive their replies where they alone may subscribe.
func TestInboxPrefix(t *testing.T) {
	t.Parallel()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seedFile := filepath.Join(t.TempDir(), "u.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))
	for _, c := range []struct {
		o    natsconn.Options
		want string
	}{
		{natsconn.Options{User: "dashboard", Password: "p"}, "_INBOX_dashboard"},
		{natsconn.Options{NkeySeedFile: seedFile}, "_INBOX_" + pub},
		{natsconn.Options{User: "dashboard", InboxPrefix: "_INBOX_web"}, "_INBOX_web"},
		{natsconn.Options{}, ""},
	} {
		got, err := c.o.Inbox()
		require.NoError(t, err)
		assert.Equal(t, c.want, got)
	}
}
