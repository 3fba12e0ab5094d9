package main

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/server"
)

// prodFlags are serve's production-footing flags: access config, TLS, cluster membership and,
// with --nats-url, the credentials to reach that deployment.
type prodFlags struct {
	authConfig    string
	tls           server.TLSFiles
	clusterName   string
	clusterListen string
	routes        []string
	serverName    string
	conn          natsconn.Options
	responder     natsconn.Options
}

func (p *prodFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.authConfig, "auth-config", "", "access config (YAML or JSON): NATS users per role and HTTP bearer tokens; see docs/SECURITY.md")
	f.StringVar(&p.tls.Cert, "tls-cert", "", "TLS certificate (PEM) of the embedded NATS server (client port and routes); with --nats-url: client certificate")
	f.StringVar(&p.tls.Key, "tls-key", "", "private key (PEM) of --tls-cert")
	f.StringVar(&p.tls.CA, "tls-ca", "", "CA (PEM) that signs client and route certificates; with --nats-url: CA of the deployment")
	f.BoolVar(&p.tls.Verify, "tls-verify", false, "require client certificates signed by --tls-ca (mTLS)")
	f.StringVar(&p.clusterName, "cluster-name", "", "run the embedded server as a node of this JetStream cluster")
	f.StringVar(&p.clusterListen, "cluster-listen", "", "HOST:PORT of this node's cluster route listener (e.g. 0.0.0.0:6222)")
	f.StringSliceVar(&p.routes, "routes", nil, "route URLs of the other nodes, comma-separated (nats://ledger2:6222,...)")
	f.StringVar(&p.serverName, "server-name", "", "stable name of this node (default: the host name in a cluster)")
	p.conn.AddCredentialFlags(f)
	f.StringVar(&p.responder.User, "nats-responder-user", "", "with --nats-url: NATS user that answers requests (password from $"+responderPasswordEnv+"); give it publish rights on the users' inboxes only")
	f.StringVar(&p.responder.NkeySeedFile, "nats-responder-nkey", "", "with --nats-url: nkey seed file of the user that answers requests")
	f.StringVar(&p.responder.CredsFile, "nats-responder-creds", "", "with --nats-url: JWT credentials of the user that answers requests")
}

// responderPasswordEnv holds the password of --nats-responder-user.
const responderPasswordEnv = "CREDITLEDGER_NATS_RESPONDER_PASSWORD"

// apply fills the server config; the log gets one loud line when the ledger runs open.
func (p *prodFlags) apply(cfg *server.Config, log zerolog.Logger) error {
	if p.authConfig != "" {
		a, err := authz.Load(p.authConfig)
		if err != nil {
			return err
		}
		if st, err := os.Stat(p.authConfig); err == nil && st.Mode().Perm()&0o077 != 0 {
			log.Warn().Str("file", p.authConfig).Str("mode", st.Mode().Perm().String()).
				Msg("the access config holds secrets but is readable by group or others; chmod 600 it")
		}
		cfg.Auth = a
	}
	cfg.Cluster = server.ClusterConfig{Name: p.clusterName, Listen: p.clusterListen, Routes: p.routes}
	cfg.ServerName = p.serverName
	if cfg.Cluster.Enabled() && cfg.ServerName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--server-name: %w", err)
		}
		cfg.ServerName = h
	}
	if cfg.NATSURL != "" {
		if cfg.Cluster.Enabled() {
			return fmt.Errorf("--cluster-name, --cluster-listen and --routes configure the embedded server; several ledgers on one --nats-url deployment share its partitions by themselves")
		}
		p.conn.TLSCA, p.conn.TLSCert, p.conn.TLSKey = p.tls.CA, p.tls.Cert, p.tls.Key
		cfg.NATSConn = p.conn
		if r := p.responder; r.User != "" || r.NkeySeedFile != "" || r.CredsFile != "" {
			if r.Password = os.Getenv(responderPasswordEnv); r.User != "" && r.Password == "" {
				return fmt.Errorf("--nats-responder-user: set $%s to its password", responderPasswordEnv)
			}
			cfg.ResponderConn = &r
		} else {
			log.Warn().Msg("--nats-url without --nats-responder-user/-nkey/-creds: the ledger identity, which may append, also answers requests; only the in-process reply check keeps answers in the inboxes (docs/SECURITY.md)")
		}
	} else {
		cfg.TLS = p.tls
	}
	switch {
	case cfg.Auth == nil && cfg.NATSURL == "":
		log.Warn().Msg("SECURITY WARNING: no --auth-config: the embedded NATS server lets ANY client send commands, " +
			"publish forged events and manage streams, and the HTTP API needs no token; see docs/SECURITY.md")
	case cfg.Auth == nil:
		log.Warn().Msg("SECURITY WARNING: no --auth-config: the HTTP API needs no token; see docs/SECURITY.md")
	}
	return nil
}
