package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/metrics"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/writer"
)

// tlsTimeout bounds a TLS handshake on the client port and on routes, in seconds.
const tlsTimeout = 2.0

// TLSFiles are the PEM files of the embedded server's TLS, used on the client port and on the
// cluster routes. Verify requires every client to present a certificate signed by CA (mTLS);
// routes always verify each other.
type TLSFiles struct {
	Cert   string
	Key    string
	CA     string
	Verify bool
}

// Enabled reports whether TLS is configured.
func (t TLSFiles) Enabled() bool { return t.Cert != "" || t.Key != "" }

func (t TLSFiles) validate() error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("tls: give both --tls-cert and --tls-key")
	}
	if t.Verify && (t.CA == "" || !t.Enabled()) {
		return fmt.Errorf("tls: --tls-verify needs --tls-cert, --tls-key and --tls-ca (the CA that signs client certificates)")
	}
	if t.CA != "" && !t.Enabled() {
		return fmt.Errorf("tls: --tls-ca without --tls-cert and --tls-key")
	}
	return nil
}

// production is the state the production-footing features (access control, TLS, cluster,
// metrics) keep on a Server.
type production struct {
	metrics *metrics.Metrics
	claims  writer.IDClaims
	// commands records command ids across partitions (LEDGER_COMMANDS).
	commands writer.CommandClaims
	// responder is the identity that answers requests on the embedded server (nil: none, the
	// ledger identity answers; see responder.go).
	responder *authz.Responder
	// subscriptions is the subscription claims on the same bucket.
	subscriptions writer.SubscriptionClaims
	leases        *jetstore.Leases
}

// applyAccess turns on authorization (every user with its role's permissions) and TLS in the
// embedded server's options.
func applyAccess(opts *natsserver.Options, cfg EmbeddedConfig) error {
	if cfg.Auth != nil {
		var resp []authz.Responder
		if cfg.Responder != nil {
			resp = append(resp, *cfg.Responder)
		}
		users, nkeys, err := cfg.Auth.ServerUsers(resp...)
		if err != nil {
			return err
		}
		accounts, err := cfg.Auth.ServerAccounts() // the auditors in an account of their own
		if err != nil {
			return err
		}
		opts.Users, opts.Nkeys, opts.Accounts = users, nkeys, accounts
		opts.NoAuthUser = ""
	}
	if err := cfg.TLS.validate(); err != nil {
		return err
	}
	if !cfg.TLS.Enabled() {
		return nil
	}
	tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{
		CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, CaFile: cfg.TLS.CA, Verify: cfg.TLS.Verify, Timeout: tlsTimeout,
	})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = tc, true, cfg.TLS.Verify, tlsTimeout
	return nil
}

// startEmbedded starts the embedded server with the process's access, TLS and cluster settings
// and, in a cluster, waits until JetStream has a meta leader.
func (s *Server) startEmbedded(ctx context.Context) (*natsserver.Server, error) {
	cfg := s.cfg
	if cfg.Auth != nil {
		r, err := authz.NewResponder()
		if err != nil {
			return nil, err
		}
		s.prod.responder = &r
	}
	ns, err := StartEmbedded(EmbeddedConfig{
		Listen: cfg.NATSListen, DataDir: cfg.DataDir, ServerName: cfg.ServerName,
		Auth: cfg.Auth, Responder: s.prod.responder, TLS: cfg.TLS, Cluster: cfg.Cluster, Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	if err := waitJetStream(ctx, ns, cfg); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	return ns, nil
}

// connOptions are the options of every connection the process makes: its name and reconnect
// policy, the ledger identity when an access config is given (the responder's for the
// connection that answers requests, when the embedded server has one), and TLS. To its own
// embedded server it connects over loopback with selfTLS; towards --nats-url it uses NATSConn
// (or the ledger identity of the access config), and ResponderConn for answering when given.
func (s *Server) connOptions(name string, responder bool) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	conn := s.cfg.NATSConn
	if r := s.cfg.ResponderConn; responder && r != nil && s.ns == nil {
		// --nats-url with a user of its own for answering: that deployment enforces what it may
		// publish (docs/SECURITY.md).
		conn.User, conn.Password, conn.NkeySeedFile, conn.CredsFile, conn.InboxPrefix = r.User, r.Password, r.NkeySeedFile, r.CredsFile, r.InboxPrefix
	}
	explicit := conn.User != "" || conn.NkeySeedFile != "" || conn.CredsFile != ""
	if s.ns != nil {
		conn = natsconn.Options{} // the embedded server: credentials from Auth, TLS below
		explicit = false
		if s.cfg.TLS.Enabled() {
			tc, err := selfTLS(s.cfg.TLS)
			if err != nil {
				return nil, err
			}
			opts = append(opts, nats.Secure(tc))
		}
	}
	more, err := conn.NATSOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, more...)
	if responder && s.ns != nil && s.prod.responder != nil {
		return append(opts, s.prod.responder.Options()...), nil
	}
	if s.cfg.Auth != nil && !explicit {
		id, err := s.cfg.Auth.LedgerOptions()
		if err != nil {
			return nil, err
		}
		opts = append(opts, id...)
	}
	return opts, nil
}

// selfTLS is the client side of the ledger's connections to its own embedded server: it
// presents the server's own certificate (so --tls-verify needs no extra client certificate; the
// certificate must allow client auth, as cluster routes need anyway) and accepts exactly that
// certificate from the other end, whatever name the listen address has (0.0.0.0 in a container).
// (An in-process connection would need neither, but nats-server's in-process pipe was seen to
// stall object-store writes for a minute in a cluster; loopback TCP does not.)
func selfTLS(t TLSFiles) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	own := pair.Certificate[0]
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{pair},
		InsecureSkipVerify: true, // replaced by the pin below: the peer must be this very certificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], own) {
				return errors.New("tls: the embedded server did not present its own certificate")
			}
			return nil
		},
	}, nil
}

// Auth is the access config the process runs with (nil: none).
func (s *Server) Auth() *authz.Config { return s.cfg.Auth }
