package productiontest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/server"
)

// TestTLS: the client port speaks only TLS; a client that trusts the CA works, a plaintext
// client and one that does not trust the CA are refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "ledger")
	cert, key := ca.issue(t, "server")
	cfg := baseConfig(t)
	cfg.TLS = server.TLSFiles{Cert: cert, Key: key, CA: ca.CA}
	srv := start(t, cfg)

	nc, err := natsconn.Connect(natsconn.Options{URL: srv.ClientURL(), TLSCA: ca.CA})
	require.NoError(t, err)
	defer nc.Close()
	assert.True(t, nc.TLSRequired())
	waitServing(t, nc)
	a, err := client(t, nc).PurchaseLicense(ctxT(t), purchase("tls-1", "acct-tls", "L-tls", "10"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a.Version)

	_, err = nats.Connect(srv.ClientURL(), nats.MaxReconnects(0))
	assert.Error(t, err, "plaintext client")
	_, err = natsconn.Connect(natsconn.Options{URL: srv.ClientURL(), TLSCA: newCA(t, "other").CA}, nats.MaxReconnects(0))
	assert.ErrorContains(t, err, "certificate", "client that does not trust the server's CA")
}

// TestMutualTLS: with --tls-verify a client needs a certificate from the configured CA; none,
// or one from another CA, is refused. Authorization still applies on top, and the ledger's own
// connections (in-process) need no certificate.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "ledger")
	srvCert, srvKey := ca.issue(t, "server")
	cliCert, cliKey := ca.issue(t, "dashboard")
	rogue := newCA(t, "rogue")
	rogueCert, rogueKey := rogue.issue(t, "mallory")
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.TLS = server.TLSFiles{Cert: srvCert, Key: srvKey, CA: ca.CA, Verify: true}
	cfg.Auth = acc.Config
	srv := start(t, cfg)
	url := srv.ClientURL()

	good := natsconn.Options{URL: url, TLSCA: ca.CA, TLSCert: cliCert, TLSKey: cliKey, User: "dashboard", Password: dashboardPassword}
	nc, err := natsconn.Connect(good)
	require.NoError(t, err, "certificate from the CA, valid credentials")
	defer nc.Close()
	waitServing(t, nc)

	noCert := good
	noCert.TLSCert, noCert.TLSKey = "", ""
	_, err = natsconn.Connect(noCert, nats.MaxReconnects(0))
	assert.Error(t, err, "no client certificate under mTLS")

	wrongCA := good
	wrongCA.TLSCert, wrongCA.TLSKey = rogueCert, rogueKey
	_, err = natsconn.Connect(wrongCA, nats.MaxReconnects(0))
	assert.Error(t, err, "client certificate from an unknown CA")

	noCreds := good
	noCreds.User, noCreds.Password = "", ""
	_, err = natsconn.Connect(noCreds, nats.MaxReconnects(0))
	assert.ErrorIs(t, err, nats.ErrAuthorization, "a good certificate does not replace credentials")
}
