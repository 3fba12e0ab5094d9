package natsconn

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"
)

// PasswordEnv is read for the password when a user is given without one, so a password need
// not appear on a command line (where ps would show it).
const PasswordEnv = "CREDITLEDGER_NATS_PASSWORD"

// ErrConfig is wrapped by every validation error of Options.
var ErrConfig = errors.New("natsconn: invalid connection settings")

// Options are the settings of one NATS client connection. The zero value connects without
// credentials and without TLS.
type Options struct {
	// URL is the server URL (or a comma-separated list); nats.DefaultURL when empty.
	URL string
	// User and Password authenticate with a username and password (nats-server users).
	User     string
	Password string
	// NkeySeedFile authenticates as an nkey user: the file holds the user's seed (SU...).
	NkeySeedFile string
	// CredsFile authenticates with a JWT credentials file (operator/decentralised mode).
	CredsFile string
	// TLSCA verifies the server's certificate against this CA bundle (PEM) instead of the
	// system roots. TLSCert and TLSKey present a client certificate (needed under mTLS).
	TLSCA   string
	TLSCert string
	TLSKey  string
	// InboxPrefix is the subject prefix replies arrive on. The ledger's access config lets each
	// user subscribe only to its own prefix, "_INBOX_<user>" (or "_INBOX_<public nkey>"), so
	// that is the default with User or NkeySeedFile; "_INBOX" restores the NATS default (for a
	// deployment that grants _INBOX.>). Without credentials, or with CredsFile, the default is
	// NATS's own unless this is set.
	InboxPrefix string
}

// inboxBase starts the derived inbox prefixes (authz.InboxPrefixBase; natsconn does not
// import authz, which is the server's policy).
const inboxBase = "_INBOX_"

// Inbox is the inbox prefix the connection uses: InboxPrefix, else the one the access config
// gives the user (empty: the NATS default).
func (o Options) Inbox() (string, error) {
	switch {
	case o.InboxPrefix != "":
		return o.InboxPrefix, nil
	case o.User != "":
		return inboxBase + o.User, nil
	case o.NkeySeedFile != "":
		seed, err := os.ReadFile(o.NkeySeedFile)
		if err != nil {
			return "", fmt.Errorf("%w: nkey seed file: %v", ErrConfig, err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			return "", fmt.Errorf("%w: nkey seed file: %v", ErrConfig, err)
		}
		defer kp.Wipe()
		pub, err := kp.PublicKey()
		if err != nil {
			return "", fmt.Errorf("%w: nkey seed file: %v", ErrConfig, err)
		}
		return inboxBase + pub, nil
	}
	return "", nil
}

// Secure reports whether any TLS setting is present.
func (o Options) Secure() bool { return o.TLSCA != "" || o.TLSCert != "" || o.TLSKey != "" }

// Validate reports the first inconsistency: more than one kind of credential, half a client
// certificate, or a file that cannot be read.
func (o Options) Validate() error {
	kinds := 0
	for _, set := range []bool{o.User != "", o.NkeySeedFile != "", o.CredsFile != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return fmt.Errorf("%w: give one of user/password, nkey seed file or creds file", ErrConfig)
	}
	if o.Password != "" && o.User == "" {
		return fmt.Errorf("%w: a password needs a user", ErrConfig)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return fmt.Errorf("%w: a client certificate needs both --tls-cert and --tls-key", ErrConfig)
	}
	for _, f := range []struct{ what, path string }{
		{"nkey seed file", o.NkeySeedFile}, {"creds file", o.CredsFile},
		{"TLS CA", o.TLSCA}, {"TLS certificate", o.TLSCert}, {"TLS key", o.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, f.what, err)
		}
	}
	return nil
}

// NATSOptions validates o and returns the nats.go options it stands for (the URL is not one of
// them; pass it to nats.Connect).
func (o Options) NATSOptions() ([]nats.Option, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case o.User != "":
		pw := o.Password
		if pw == "" {
			pw = os.Getenv(PasswordEnv)
		}
		opts = append(opts, nats.UserInfo(o.User, pw))
	case o.NkeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey seed file: %v", ErrConfig, err)
		}
		opts = append(opts, opt)
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.Secure() {
		opts = append(opts, nats.Secure())
	}
	inbox, err := o.Inbox()
	if err != nil {
		return nil, err
	}
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	return opts, nil
}

// Connect connects to o.URL with o's settings, then extra (a name, reconnect policy, handlers).
func Connect(o Options, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := o.NATSOptions()
	if err != nil {
		return nil, err
	}
	url := o.URL
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}

// AddCredentialFlags registers --nats-user, --nats-password, --nats-nkey and --nats-creds.
func (o *Options) AddCredentialFlags(f *pflag.FlagSet) {
	f.StringVar(&o.User, "nats-user", "", "NATS user name (password from --nats-password or $"+PasswordEnv+")")
	f.StringVar(&o.Password, "nats-password", "", "NATS password (prefer $"+PasswordEnv+": flags show up in ps)")
	f.StringVar(&o.NkeySeedFile, "nats-nkey", "", "file holding the NATS nkey seed (SU...) to authenticate with")
	f.StringVar(&o.CredsFile, "nats-creds", "", "NATS JWT credentials file (operator mode deployments)")
	f.StringVar(&o.InboxPrefix, "nats-inbox-prefix", "", "subject prefix replies arrive on (default _INBOX_<user> or _INBOX_<public nkey>, as the access config grants; _INBOX for the NATS default)")
}

// AddTLSFlags registers --tls-ca, --tls-cert and --tls-key with client meaning.
func (o *Options) AddTLSFlags(f *pflag.FlagSet) {
	f.StringVar(&o.TLSCA, "tls-ca", "", "CA bundle (PEM) that signed the NATS server's certificate")
	f.StringVar(&o.TLSCert, "tls-cert", "", "client certificate (PEM) to present to NATS (mTLS)")
	f.StringVar(&o.TLSKey, "tls-key", "", "private key (PEM) of --tls-cert")
}
