package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"
)

// Role is what a NATS user or an HTTP token may do.
type Role string

// The roles. ledger, service, dashboard and auditor are NATS roles; dashboard, auditor and
// metrics are HTTP roles.
const (
	// RoleLedger is the ledger process itself: the only identity that may publish
	// ledger.events.> and manage streams.
	RoleLedger Role = "ledger"
	// RoleService may request ledger.cmd.> and ledger.query.>.
	RoleService Role = "service"
	// RoleDashboard may request ledger.query.> (NATS) and read the account routes (HTTP).
	RoleDashboard Role = "dashboard"
	// RoleAuditor may read the LEDGER and checkpoint streams and request ledger.query.> (NATS),
	// and read the account and audit routes (HTTP).
	RoleAuditor Role = "auditor"
	// RoleMetrics may scrape GET /metrics (HTTP only).
	RoleMetrics Role = "metrics"
)

// DefaultAuditorStreams are the streams an auditor may read when the config names none: the
// event store and the signed checkpoints.
var DefaultAuditorStreams = []string{"LEDGER", "LEDGER_CHECKPOINTS"}

// MinTokenLen bounds how short a plaintext HTTP token may be.
const MinTokenLen = 16

// ErrInvalid is wrapped by every validation error of a Config.
var ErrInvalid = errors.New("authz: invalid access config")

// Config is the access config file.
type Config struct {
	NATS NATSConfig `json:"nats" yaml:"nats"`
	HTTP HTTPConfig `json:"http" yaml:"http"`

	ledgerPublic string // the ledger's public nkey, when it authenticates with a seed
}

// NATSConfig lists the NATS users.
type NATSConfig struct {
	Users []User `json:"users" yaml:"users"`
	// Cluster is required of every cluster route (all nodes share it); a cluster node with an
	// access config but no Cluster does not start (server.ErrOpenRoutes).
	Cluster *RouteAuth `json:"cluster,omitempty" yaml:"cluster,omitempty"`
	// AuditorStreams are the streams the auditor role may read (DefaultAuditorStreams if empty).
	AuditorStreams []string `json:"auditor_streams,omitempty" yaml:"auditor_streams,omitempty"`
}

// User is one NATS identity: a user with a password, or an nkey.
type User struct {
	Role Role `json:"role" yaml:"role"`
	// User and Password: a password user. Password may be a bcrypt hash ($2a$...), except for
	// the ledger role, which must present it and so needs it in plain text.
	User     string `json:"user,omitempty" yaml:"user,omitempty"`
	Password string `json:"password,omitempty" yaml:"password,omitempty"`
	// Nkey is a user's public nkey (U...); the client signs the server's nonce with its seed.
	Nkey string `json:"nkey,omitempty" yaml:"nkey,omitempty"`
	// NkeySeedFile (ledger role only) holds the ledger's own seed; its public key is derived.
	// A relative path is relative to the config file.
	NkeySeedFile string `json:"nkey_seed_file,omitempty" yaml:"nkey_seed_file,omitempty"`
	// InboxPrefix is where the user's replies arrive (InboxPrefix: "_INBOX_<user>" or
	// "_INBOX_<nkey>" unless given); the user may subscribe to nothing else.
	InboxPrefix string `json:"inbox_prefix,omitempty" yaml:"inbox_prefix,omitempty"`
}

// RouteAuth is the user and password cluster routes authenticate with.
type RouteAuth struct {
	User     string `json:"user" yaml:"user"`
	Password string `json:"password" yaml:"password"`
}

// HTTPConfig lists the HTTP bearer tokens.
type HTTPConfig struct {
	Tokens []Token `json:"tokens" yaml:"tokens"`
}

// Token maps a bearer token to a role. Give the token itself or, better, its SHA-256 in hex
// (`printf %s "$TOKEN" | sha256sum`), so the file does not hold the secret.
type Token struct {
	Role        Role   `json:"role" yaml:"role"`
	Name        string `json:"name,omitempty" yaml:"name,omitempty"`
	Token       string `json:"token,omitempty" yaml:"token,omitempty"`
	TokenSHA256 string `json:"token_sha256,omitempty" yaml:"token_sha256,omitempty"`
}

// Load reads and validates an access config: YAML, or JSON when the name ends in .json.
// Unknown fields are errors, so a misspelt key cannot silently widen access.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("access config: %w", err)
	}
	c, err := Parse(data, strings.HasSuffix(strings.ToLower(path), ".json"))
	if err != nil {
		return nil, fmt.Errorf("access config %s: %w", path, err)
	}
	if err := c.resolve(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("access config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a config; relative seed file paths stay as given.
func Parse(data []byte, isJSON bool) (*Config, error) {
	var c Config
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// resolve makes seed paths absolute and derives the ledger's public nkey from its seed.
func (c *Config) resolve(dir string) error {
	for i := range c.NATS.Users {
		u := &c.NATS.Users[i]
		if u.NkeySeedFile != "" && !filepath.IsAbs(u.NkeySeedFile) {
			u.NkeySeedFile = filepath.Join(dir, u.NkeySeedFile)
		}
	}
	return c.derive()
}

func (c *Config) derive() error {
	l := c.Ledger()
	if l.NkeySeedFile == "" {
		return nil
	}
	seed, err := os.ReadFile(l.NkeySeedFile)
	if err != nil {
		return fmt.Errorf("%w: ledger nkey seed: %v", ErrInvalid, err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return fmt.Errorf("%w: ledger nkey seed: %v", ErrInvalid, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return fmt.Errorf("%w: ledger nkey seed is not a user seed (SU...)", ErrInvalid)
	}
	c.ledgerPublic = pub
	return nil
}

// Validate reports the first problem: exactly one ledger identity, known roles, one credential
// per user, unique user names and nkeys, well-formed tokens.
func (c *Config) Validate() error {
	ledgers := 0
	seen := map[string]bool{}
	prefixes := map[string]string{}
	for i, u := range c.NATS.Users {
		where := fmt.Sprintf("nats.users[%d]", i)
		if err := u.validate(where); err != nil {
			return err
		}
		if u.Role == RoleLedger {
			ledgers++
		}
		id := "user:" + u.User
		if u.Nkey != "" {
			id = "nkey:" + u.Nkey
		}
		if u.NkeySeedFile != "" {
			id = "seed:" + u.NkeySeedFile
		}
		if seen[id] {
			return fmt.Errorf("%w: %s: %s appears twice", ErrInvalid, where, id)
		}
		seen[id] = true
		if u.User == ResponderUser {
			return fmt.Errorf("%w: %s: the user name %s is the ledger's own responder", ErrInvalid, where, ResponderUser)
		}
		if u.NkeySeedFile == "" { // a seed's prefix is known once the seed is read (derive)
			if err := c.checkInbox(u, where, prefixes); err != nil {
				return err
			}
		}
	}
	if ledgers != 1 {
		return fmt.Errorf("%w: nats.users needs exactly one user with role ledger (found %d)", ErrInvalid, ledgers)
	}
	if r := c.NATS.Cluster; r != nil && (r.User == "" || r.Password == "") {
		return fmt.Errorf("%w: nats.cluster needs user and password", ErrInvalid)
	}
	for _, s := range c.NATS.AuditorStreams {
		if s == "" || strings.ContainsAny(s, ".*> \t") {
			return fmt.Errorf("%w: nats.auditor_streams: %q is not a stream name", ErrInvalid, s)
		}
	}
	for i, t := range c.HTTP.Tokens {
		if err := t.validate(fmt.Sprintf("http.tokens[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (u User) validate(where string) error {
	switch u.Role {
	case RoleLedger, RoleService, RoleDashboard, RoleAuditor:
	default:
		return fmt.Errorf("%w: %s: role %q is not a NATS role (ledger, service, dashboard, auditor)", ErrInvalid, where, u.Role)
	}
	creds := 0
	if u.User != "" {
		creds++
		if u.Password == "" {
			return fmt.Errorf("%w: %s: user %q has no password", ErrInvalid, where, u.User)
		}
	}
	if u.Nkey != "" {
		creds++
		if !nkeys.IsValidPublicUserKey(u.Nkey) {
			return fmt.Errorf("%w: %s: nkey is not a public user nkey (U...)", ErrInvalid, where)
		}
	}
	if u.NkeySeedFile != "" {
		creds++
		if u.Role != RoleLedger {
			return fmt.Errorf("%w: %s: nkey_seed_file is for the ledger role only; give other users their public nkey", ErrInvalid, where)
		}
	}
	if creds != 1 {
		return fmt.Errorf("%w: %s: give exactly one of user+password, nkey, nkey_seed_file", ErrInvalid, where)
	}
	if u.Password != "" && u.User == "" {
		return fmt.Errorf("%w: %s: password without user", ErrInvalid, where)
	}
	if u.Role == RoleLedger && u.Nkey != "" {
		return fmt.Errorf("%w: %s: the ledger must prove its identity itself: give nkey_seed_file, not its public nkey", ErrInvalid, where)
	}
	if u.Role == RoleLedger && strings.HasPrefix(u.Password, "$2") {
		return fmt.Errorf("%w: %s: the ledger presents its password, so it cannot be a bcrypt hash", ErrInvalid, where)
	}
	return nil
}

func (t Token) validate(where string) error {
	switch t.Role {
	case RoleDashboard, RoleAuditor, RoleMetrics:
	default:
		return fmt.Errorf("%w: %s: role %q is not an HTTP role (dashboard, auditor, metrics)", ErrInvalid, where, t.Role)
	}
	switch {
	case (t.Token == "") == (t.TokenSHA256 == ""):
		return fmt.Errorf("%w: %s: give exactly one of token, token_sha256", ErrInvalid, where)
	case t.Token != "" && len(t.Token) < MinTokenLen:
		return fmt.Errorf("%w: %s: token shorter than %d characters", ErrInvalid, where, MinTokenLen)
	case t.TokenSHA256 != "":
		if b, err := hex.DecodeString(t.TokenSHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%w: %s: token_sha256 must be 64 hex digits", ErrInvalid, where)
		}
	}
	return nil
}

// checkInbox checks a user's inbox prefix and that no other user has it.
func (c *Config) checkInbox(u User, where string, prefixes map[string]string) error {
	p := c.InboxPrefix(u)
	if err := validInboxPrefix(p); err != nil {
		if u.InboxPrefix == "" {
			return fmt.Errorf("%w: %s: %v; give this user an inbox_prefix", ErrInvalid, where, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
	}
	if other, ok := prefixes[p]; ok || p == ResponderInboxPrefix {
		return fmt.Errorf("%w: %s: inbox prefix %s is also %s's", ErrInvalid, where, p, other)
	}
	prefixes[p] = where
	return nil
}

// Ledger is the ledger's own identity.
func (c *Config) Ledger() User {
	for _, u := range c.NATS.Users {
		if u.Role == RoleLedger {
			return u
		}
	}
	return User{}
}

// AuditorStreamNames are the streams the auditor role may read: the ledger serves their direct
// gets (SubjectAuditRead) and stream infos (SubjectAuditInfo) for these and no others.
func (c *Config) AuditorStreamNames() []string { return append([]string(nil), c.auditorStreams()...) }

// Streams the auditor may read.
func (c *Config) auditorStreams() []string {
	if len(c.NATS.AuditorStreams) > 0 {
		return c.NATS.AuditorStreams
	}
	return DefaultAuditorStreams
}
