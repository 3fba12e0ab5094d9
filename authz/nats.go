package authz

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Subjects the permissions refer to.
const (
	subjCommands   = "ledger.cmd.>"
	subjQueries    = "ledger.query.>"
	subjCheckpoint = "ledger.audit.>"
	subjEvents     = "ledger.events.>"
	// subjRejections is the rejection log: only the ledger writes it (a forged rejection would
	// make the ledger refuse a command_id it never refused).
	subjRejections = "ledger.rejections.>"
	// subjServices is the NATS micro discovery API the ledger's service answers.
	subjServices = "$SRV.>"
	jsAPI        = "$JS.API."
)

// InboxPrefixBase starts every inbox prefix: a user's replies arrive on <prefix>.>, and the
// prefix is one subject token that starts with it ("_INBOX_dashboard").
const InboxPrefixBase = "_INBOX_"

// ResponderUser is the NATS user name of the ledger's responder: the identity that answers
// commands and queries (responder.go). No user of the access config may take it.
const ResponderUser = "creditledger-responder"

// InboxPrefix is the subject prefix user u receives its replies on: inbox_prefix when the
// config gives one, else "_INBOX_" followed by the user name or the public nkey. Its clients set
// it as their connection's inbox prefix (nats.CustomInboxPrefix; natsconn does it).
func (c *Config) InboxPrefix(u User) string {
	switch {
	case u.InboxPrefix != "":
		return u.InboxPrefix
	case u.User != "":
		return InboxPrefixBase + u.User
	case u.Nkey != "":
		return InboxPrefixBase + u.Nkey
	case u.NkeySeedFile != "":
		return InboxPrefixBase + c.ledgerPublic
	}
	return ""
}

// ClientInboxPrefixes are the inbox prefixes of every user of the config: the only subjects
// the responder may answer on.
func (c *Config) ClientInboxPrefixes() []string {
	out := make([]string, 0, len(c.NATS.Users))
	for _, u := range c.NATS.Users {
		out = append(out, c.InboxPrefix(u))
	}
	return out
}

// Permissions is what user u may publish and subscribe to; nil for an unknown role. Every user
// subscribes only to its own inbox prefix (where its replies, and the messages of its reads,
// arrive), so no one reads another's replies or the ledger's own deliveries.
//
//   - ledger (the appender): publishes to the streams and the JetStream API, never to an inbox
//     (it answers no requests: the responder does), subscribes to its own inbox only.
//   - service: publish ledger.cmd.> and ledger.query.>.
//   - dashboard: publish ledger.query.>.
//   - auditor: publish ledger.query.> (nothing else under ledger., not even a checkpoint
//     request) and, for each auditor stream S, stream info and direct gets (AuditorStreamAPI):
//     no consumers, so it cannot make the server deliver anywhere. No stream admin.
//
// Every role but the ledger is also explicitly denied ledger.events.>, the rejection log and
// the stream admin API, so a later widening of an allow list cannot reopen them.
func (c *Config) Permissions(u User) *natsserver.Permissions {
	inbox := &natsserver.SubjectPermission{Allow: []string{c.InboxPrefix(u) + ".>"}}
	deny := []string{subjEvents, subjRejections, jsAPI + "STREAM.CREATE.>", jsAPI + "STREAM.UPDATE.>", jsAPI + "STREAM.DELETE.>",
		jsAPI + "STREAM.PURGE.>", jsAPI + "STREAM.MSG.DELETE.>", jsAPI + "CONSUMER.DELETE.>"}
	switch u.Role {
	case RoleLedger:
		return &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{">"}, Deny: c.inboxSpace()},
			Subscribe: inbox,
		}
	case RoleService:
		return &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{subjCommands, subjQueries}, Deny: deny},
			Subscribe: inbox,
		}
	case RoleDashboard:
		return &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{subjQueries}, Deny: append(deny, subjCommands)},
			Subscribe: inbox,
		}
	case RoleAuditor:
		allow := []string{subjQueries} // no checkpoint requests: no publish to ledger. beyond queries
		for _, s := range c.auditorStreams() {
			allow = append(allow, AuditorStreamAPI(s)...)
		}
		return &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: allow, Deny: append(deny, subjCommands)},
			Subscribe: inbox,
		}
	}
	return nil
}

// inboxSpace is every inbox a reply could go to: the users' prefixes and the default _INBOX.
func (c *Config) inboxSpace() []string {
	out := []string{"_INBOX.>"}
	for _, p := range c.ClientInboxPrefixes() {
		out = append(out, p+".>")
	}
	return out
}

// ResponderPermissions is what the responder may do: receive requests (commands, queries,
// checkpoint requests, service discovery) and publish only into the users' inboxes. Whatever
// reply subject a requester chooses, the server refuses any other publish, so no reply can land
// in a stream, on a ledger subject or on the JetStream API. In a cluster it also passes a
// command to the node that owns the account's partition (SubjectOwner, answered into the
// responder's own inbox): only the ledgers' responders use those subjects, and the public
// endpoints answer no reply outside an inbox, so no requester can aim a reply there.
func (c *Config) ResponderPermissions() *natsserver.Permissions {
	allow := make([]string, 0, len(c.NATS.Users)+2)
	for _, p := range c.ClientInboxPrefixes() {
		allow = append(allow, p+".>")
	}
	allow = append(allow, SubjectOwner, ResponderInboxPrefix+".>")
	return &natsserver.Permissions{
		Publish:   &natsserver.SubjectPermission{Allow: allow, Deny: []string{subjEvents, subjRejections, "$JS.>", "$KV.>", "$O.>"}},
		Subscribe: &natsserver.SubjectPermission{Allow: []string{subjCommands, subjQueries, subjCheckpoint, subjServices, SubjectOwner, ResponderInboxPrefix + ".>"}},
	}
}

// SubjectOwner is where a node passes a command to the owner of the account's partition
// (commands/service: ledger.owner.<partition>.<command>).
const SubjectOwner = "ledger.owner.>"

// ResponderInboxPrefix is the responder's own inbox prefix (it makes no requests; set for
// completeness, so its connection never uses _INBOX.).
const ResponderInboxPrefix = InboxPrefixBase + ResponderUser

// AuditorStreamAPI lists the JetStream API subjects that reading stream s needs, and no more:
//
//	STREAM.INFO.s               stream handle, head, configuration check
//	DIRECT.GET.s                a message by position, the next one on a subject, or a batch
//	DIRECT.GET.s.>              the last message on a subject
//
// No CONSUMER.CREATE: a consumer's configuration (its deliver subject) is in the request body,
// which permissions cannot see, so a reader allowed to create consumers could make the server
// deliver into any subject, the ledger's own included. Batched direct gets read a stream just as
// well. The ledger's streams allow direct gets; a stream without allow_direct would also need
// STREAM.MSG.GET.s (left out on purpose).
func AuditorStreamAPI(s string) []string {
	return []string{
		jsAPI + "STREAM.INFO." + s,
		jsAPI + "DIRECT.GET." + s,
		jsAPI + "DIRECT.GET." + s + ".>",
	}
}

// Responder is the ledger's second identity on its embedded server: a user made at start with
// a random password, which answers requests and can do nothing else (ResponderPermissions).
type Responder struct {
	Password string
}

// NewResponder makes a responder identity with a fresh random password.
func NewResponder() (Responder, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return Responder{}, fmt.Errorf("responder password: %w", err)
	}
	return Responder{Password: hex.EncodeToString(b)}, nil
}

// Options are the nats.go options the responder connects with.
func (r Responder) Options() []nats.Option {
	return []nats.Option{nats.UserInfo(ResponderUser, r.Password), nats.CustomInboxPrefix(ResponderInboxPrefix)}
}

// ServerUsers returns the users and nkey users for the embedded server's options, each with its
// role's permissions, and the responder when one is given. Setting either on natsserver.Options
// turns authorization on: a client without valid credentials cannot connect.
func (c *Config) ServerUsers(resp ...Responder) ([]*natsserver.User, []*natsserver.NkeyUser, error) {
	if c.ledgerPublic == "" && c.Ledger().NkeySeedFile != "" {
		if err := c.derive(); err != nil {
			return nil, nil, err
		}
	}
	var users []*natsserver.User
	var nkeyUsers []*natsserver.NkeyUser
	for _, u := range c.NATS.Users {
		perms := c.Permissions(u)
		if perms == nil {
			return nil, nil, fmt.Errorf("%w: role %q has no NATS permissions", ErrInvalid, u.Role)
		}
		switch {
		case u.User != "":
			users = append(users, &natsserver.User{Username: u.User, Password: u.Password, Permissions: perms})
		case u.Nkey != "":
			nkeyUsers = append(nkeyUsers, &natsserver.NkeyUser{Nkey: u.Nkey, Permissions: perms})
		case u.NkeySeedFile != "":
			nkeyUsers = append(nkeyUsers, &natsserver.NkeyUser{Nkey: c.ledgerPublic, Permissions: perms})
		}
	}
	for _, r := range resp {
		users = append(users, &natsserver.User{Username: ResponderUser, Password: r.Password, Permissions: c.ResponderPermissions()})
	}
	return users, nkeyUsers, nil
}

// LedgerOptions are the nats.go options the ledger process (the appender) authenticates with,
// its own inbox prefix included.
func (c *Config) LedgerOptions() ([]nats.Option, error) {
	l := c.Ledger()
	switch {
	case l.User != "":
		return []nats.Option{nats.UserInfo(l.User, l.Password), nats.CustomInboxPrefix(c.InboxPrefix(l))}, nil
	case l.NkeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(l.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ledger nkey seed: %v", ErrInvalid, err)
		}
		if c.ledgerPublic == "" {
			if err := c.derive(); err != nil {
				return nil, err
			}
		}
		return []nats.Option{opt, nats.CustomInboxPrefix(c.InboxPrefix(l))}, nil
	}
	return nil, fmt.Errorf("%w: no ledger identity", ErrInvalid)
}

// validInboxPrefix reports why p cannot be an inbox prefix: one subject token starting with
// InboxPrefixBase.
func validInboxPrefix(p string) error {
	if !strings.HasPrefix(p, InboxPrefixBase) || len(p) == len(InboxPrefixBase) || strings.ContainsAny(p, ".*> \t\r\n") {
		return fmt.Errorf("inbox prefix %q must be one subject token starting with %s (no dots, spaces or wildcards)", p, InboxPrefixBase)
	}
	return nil
}
