package authz

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	// subjFences are the partitions' ownership records in the LEDGER stream: only the ledger
	// writes them (a forged one would fence the real owner out of its partition).
	subjFences = "ledger.fence.>"
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
//     (it answers no requests: the responder does), subscribes to its own inbox and to the
//     auditors' direct gets (SubjectAuditRead) and stream infos (SubjectAuditInfo), which it
//     bounds before the JetStream API sees them.
//   - service: publish ledger.cmd.> and ledger.query.>.
//   - dashboard: publish ledger.query.>.
//   - auditor: publish ledger.query.> (nothing else under ledger., not even a checkpoint
//     request) and, for each auditor stream S, stream info and direct gets (AuditorStreamAPI):
//     no consumers, so it cannot make the server deliver anywhere. No stream admin.
//
// Every role but the ledger is also explicitly denied ledger.events.>, ledger.fence.>, the rejection log,
// the nodes' internal subjects (SubjectOwner, SubjectNode, SubjectAuditRead and SubjectAuditInfo:
// publish and subscribe) and the stream
// admin API, so a later widening of an allow list cannot reopen them.
func (c *Config) Permissions(u User) *natsserver.Permissions {
	inbox := &natsserver.SubjectPermission{Allow: []string{c.InboxPrefix(u) + ".>"}}
	deny := []string{subjEvents, subjFences, subjRejections, SubjectOwner, SubjectNode, SubjectAuditRead, SubjectAuditInfo, jsAPI + "STREAM.CREATE.>", jsAPI + "STREAM.UPDATE.>", jsAPI + "STREAM.DELETE.>",
		jsAPI + "STREAM.PURGE.>", jsAPI + "STREAM.MSG.DELETE.>", jsAPI + "CONSUMER.DELETE.>"}
	if u.Role != RoleLedger {
		inbox.Deny = []string{SubjectOwner, SubjectNode, SubjectAuditRead, SubjectAuditInfo}
	}
	switch u.Role {
	case RoleLedger:
		// It also takes the auditors' direct gets (SubjectAuditRead) and stream infos
		// (SubjectAuditInfo), which it bounds and passes on to the JetStream API.
		inbox.Allow = append(inbox.Allow, SubjectAuditRead, SubjectAuditInfo)
		return &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{">"}, Deny: append(c.inboxSpace(), SubjectAuditRead, SubjectAuditInfo)},
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
// checkpoint requests, service discovery) and publish only into the users' inboxes (and the
// server's reply subjects of imported requests, ImportReplyPrefix). Whatever
// reply subject a requester chooses, the server refuses any other publish, so no reply can land
// in a stream, on a ledger subject or on the JetStream API. In a cluster it also passes a
// command to the node that owns the account's partition (SubjectOwner, answered into the
// responder's own inbox): only the ledgers' responders use those subjects, and the public
// endpoints answer no reply outside an inbox, so no requester can aim a reply there. The same
// holds for the nodes' liveness probes (SubjectNode).
func (c *Config) ResponderPermissions() *natsserver.Permissions {
	allow := make([]string, 0, len(c.NATS.Users)+4)
	for _, p := range c.ClientInboxPrefixes() {
		allow = append(allow, p+".>")
	}
	allow = append(allow, SubjectOwner, SubjectNode, ResponderInboxPrefix+".>")
	// The auditors' queries come through an import (AuditAccount), with a reply subject of the
	// server's that it routes back to the auditor's inbox in the auditor's account.
	allow = append(allow, ImportReplyPrefix+".>")
	return &natsserver.Permissions{
		Publish:   &natsserver.SubjectPermission{Allow: allow, Deny: []string{subjEvents, subjRejections, "$JS.>", "$KV.>", "$O.>"}},
		Subscribe: &natsserver.SubjectPermission{Allow: []string{subjCommands, subjQueries, subjCheckpoint, subjServices, SubjectOwner, SubjectNode, ResponderInboxPrefix + ".>"}},
	}
}

// SubjectOwner is where a node passes a command to the owner of the account's partition
// (commands/service: ledger.owner.<partition>.<command>).
const SubjectOwner = "ledger.owner.>"

// SubjectNode is where each node answers the other nodes' liveness probes (server/alive.go:
// ledger.node.<node>.alive): only the responders may publish or subscribe there. A client that
// subscribed could answer for a dead node and hold the others back after a lease-store gap.
const SubjectNode = "ledger.node.>"

// ResponderInboxPrefix is the responder's own inbox prefix (it makes no requests; set for
// completeness, so its connection never uses _INBOX.).
const ResponderInboxPrefix = InboxPrefixBase + ResponderUser

// SubjectAuditRead is where the auditors' direct gets arrive in the ledger's account
// (ledger.auditread.<stream>, and ledger.auditread.<stream>.<subject> for the last message on a
// subject): their account's imports map $JS.API.DIRECT.GET.<stream>[.>] here (ServerAccounts),
// and the ledger bounds each request (batch, max_bytes, reads at once) before it passes it on to
// the JetStream API. NATS permissions cannot see a request's body, and nats-server queues a
// direct get's whole range at once: a raw direct get let an auditor fill the node's memory. No
// role but the ledger may publish or subscribe here (the auditors reach it only through their
// imports).
const SubjectAuditRead = "ledger.auditread.>"

// AuditReadSubject is the subject, in the ledger's account, of the auditors' direct gets of
// stream s (AuditReadSubject(s)+".<subject>" for the last message on a subject).
func AuditReadSubject(s string) string { return "ledger.auditread." + s }

// SubjectAuditInfo is where the auditors' stream infos arrive in the ledger's account
// (ledger.auditinfo.<stream>): their account's imports map $JS.API.STREAM.INFO.<stream> here
// (ServerAccounts), and the ledger refuses a subjects_filter and runs a few at once before it
// passes them on to the JetStream API. A STREAM.INFO with subjects_filter ">" makes the server
// walk every subject of the stream (one per account on LEDGER), and the server's queue of info
// requests, which the ledger's own head reads wait in and which the server drops whole once
// 10,000 wait, took an auditor's requests as fast as it sent them. No role but the ledger may
// publish or subscribe here.
const SubjectAuditInfo = "ledger.auditinfo.>"

// AuditInfoSubject is the subject, in the ledger's account, of the auditors' stream infos of
// stream s.
func AuditInfoSubject(s string) string { return "ledger.auditinfo." + s }

// AuditorStreamAPI lists the JetStream API subjects that reading stream s needs, and no more:
//
//	STREAM.INFO.s               stream handle, head, configuration check (no subjects_filter)
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

// AuditAccount is the NATS account the auditors live in on the embedded server. The JetStream
// API answers stream info and direct gets itself, with the server's identity, on whatever reply
// subject the requester chose, and NATS permissions do not look at reply subjects: in the ledger's
// account an auditor's STREAM.INFO with the reply subject ledger.events.<account> stored the answer
// in that account's history, and one with $JS.API.STREAM.DELETE.<stream> deleted a stream. In an
// account of their own, which imports only their reads (ServerAccounts), every answer lands in
// that account, where no stream and no API listens: the server rewrites the reply subject of an
// imported request to one of its own (_R_.) in the ledger's account.
const AuditAccount = "CREDITLEDGER_AUDIT"

// AuditorMaxConnections bounds the connections of AuditAccount, all auditors together. The
// server keeps the answers a connection has not read yet, up to its max_pending (64 MiB by
// default) until the write deadline closes it: auditors whose tools do not read could otherwise
// make it hold that much per connection, with no bound on connections (review12 measured
// 170 MiB held 10 s by five such). At most 16 x 64 MiB so; a connection over the bound is refused
// ("maximum account active connections exceeded").
const AuditorMaxConnections = 16

// ImportReplyPrefix starts the reply subject the server gives a request that came through a
// service import (an auditor's query, in the ledger's account): the responder answers on it, and
// the server routes the answer back to the auditor's inbox in the auditor's account.
const ImportReplyPrefix = "_R_"

// ServerAccounts are the embedded server's accounts: the global account ($G), where the ledger's
// streams live, with JetStream on and exporting to AuditAccount exactly what an auditor may
// request (queries and, for each auditor stream, AuditorStreamAPI), and AuditAccount importing
// them. An auditor's direct gets and stream infos are not the JetStream API's: its account maps
// $JS.API.DIRECT.GET.<stream>[.>] onto the ledger's AuditReadSubject(stream)[.>] and
// $JS.API.STREAM.INFO.<stream> onto AuditInfoSubject(stream), where the ledger bounds them and
// passes them on. Direct gets answer with a batch of messages, so their exports stream
// responses.
func (c *Config) ServerAccounts() ([]*natsserver.Account, error) {
	type export struct {
		Service  string `json:"service"`
		Response string `json:"response_type,omitempty"`
		// Threshold bounds how long the server keeps the route back for a request's answers.
		Threshold string   `json:"response_threshold,omitempty"`
		Accounts  []string `json:"accounts"`
	}
	type importFrom struct {
		Account string `json:"account"`
		Subject string `json:"subject"`
	}
	type imp struct {
		Service importFrom `json:"service"`
		// To is the subject the auditor publishes in its own account (the export's subject when
		// empty).
		To string `json:"to,omitempty"`
	}
	var exports []export
	var imports []imp
	// add exports subject from the ledger's account; the auditor requests it as to (subject
	// when empty).
	add := func(subject, to, response string) {
		e := export{Service: subject, Response: response, Accounts: []string{AuditAccount}}
		if to != "" {
			// A stream of answers keeps its route back until the threshold, however fast the
			// answers came (the server's default: 2 minutes), and a request the ledger's relay
			// gave up on keeps it that long too: the relay answers within the window, so a short
			// one keeps an auditor's many reads from piling up routes in the server.
			e.Threshold = directGetAnswerWindow
		}
		exports = append(exports, e)
		imports = append(imports, imp{Service: importFrom{Account: ledgerAccountDraft, Subject: subject}, To: to})
	}
	add(subjQueries, "", "")
	// An account without JetStream that imports no $JS.API.INFO gets the whole JetStream API
	// from the system account, in its own name (where JetStream is off), shadowing the imports
	// below. Importing it from the ledger's account prevents that; the auditor's permissions do
	// not allow publishing it.
	add(jsAPI+"INFO", "", "")
	for _, s := range c.auditorStreams() {
		for _, subj := range AuditorStreamAPI(s) {
			switch {
			case subj == jsAPI+"DIRECT.GET."+s:
				add(AuditReadSubject(s), subj, "stream")
			case subj == jsAPI+"DIRECT.GET."+s+".>":
				add(AuditReadSubject(s)+".>", subj, "stream")
			case subj == jsAPI+"STREAM.INFO."+s:
				add(AuditInfoSubject(s), subj, "")
			default:
				add(subj, "", "")
			}
		}
	}
	var doc strings.Builder // JSON is a NATS configuration; no \u escapes of '>' for it
	enc := json.NewEncoder(&doc)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"accounts": map[string]any{
		ledgerAccountDraft: map[string]any{"jetstream": "enabled", "exports": exports},
		AuditAccount:       map[string]any{"imports": imports, "limits": map[string]any{"max_connections": AuditorMaxConnections}},
	}}); err != nil {
		return nil, err
	}
	var o natsserver.Options
	if err := o.ProcessConfigString(doc.String()); err != nil {
		return nil, fmt.Errorf("%w: nats accounts: %v", ErrInvalid, err)
	}
	// A configuration may not name the global account, where the ledger's streams have always
	// been: the draft becomes it. The server takes an option account named $G as the global one,
	// with its JetStream and exports, and resolves the imports that name it by name.
	for _, a := range o.Accounts {
		if a.Name == ledgerAccountDraft {
			a.Name = natsserver.DEFAULT_GLOBAL_ACCOUNT
		}
	}
	return o.Accounts, nil
}

// directGetAnswerWindow is how long an auditor's direct get or stream info may take to be
// answered in full (auditread.DefaultAnswerWindow).
const directGetAnswerWindow = "10s"

// ledgerAccountDraft names the global account in the configuration ServerAccounts parses.
const ledgerAccountDraft = "CREDITLEDGER_LEDGER"

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
// role's permissions (auditors in AuditAccount, the others in the global account: give the server
// ServerAccounts too), and the responder when one is given. Setting either on natsserver.Options
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
		var acc *natsserver.Account // nil: the global account, the ledger's
		if u.Role == RoleAuditor {
			acc = natsserver.NewAccount(AuditAccount) // the server resolves it by name (ServerAccounts)
		}
		switch {
		case u.User != "":
			users = append(users, &natsserver.User{Username: u.User, Password: u.Password, Permissions: perms, Account: acc})
		case u.Nkey != "":
			nkeyUsers = append(nkeyUsers, &natsserver.NkeyUser{Nkey: u.Nkey, Permissions: perms, Account: acc})
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
