package authz

import (
	"fmt"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Subjects the permissions refer to.
const (
	subjCommands = "ledger.cmd.>"
	subjQueries  = "ledger.query.>"
	subjEvents   = "ledger.events.>"
	// subjRejections is the rejection log: only the ledger writes it (a forged rejection would
	// make the ledger refuse a command_id it never refused).
	subjRejections = "ledger.rejections.>"
	subjInbox      = "_INBOX.>"
	jsAPI          = "$JS.API."
)

// Permissions is what a NATS role may publish and subscribe to; nil for an unknown role.
//
//   - ledger: everything (it serves the micro endpoints, appends ledger.events.>, manages the
//     streams and the id-reservation bucket, and answers on callers' inboxes).
//   - service: publish ledger.cmd.> and ledger.query.>; subscribe to its reply inboxes.
//   - dashboard: publish ledger.query.>; subscribe to its reply inboxes.
//   - auditor: publish ledger.query.> (nothing else under ledger., not even a checkpoint
//     request, as the contract says) and, for each auditor stream S, the read-only
//     JetStream API an ordered consumer and a direct get need (AuditorStreamAPI); subscribe to
//     its inboxes (where consumers deliver). No CONSUMER.DELETE, no stream admin.
//
// Every role but the ledger is also explicitly denied ledger.events.> and the stream admin API,
// so a later widening of an allow list cannot reopen them.
func (c *Config) Permissions(r Role) *natsserver.Permissions {
	inbox := &natsserver.SubjectPermission{Allow: []string{subjInbox}}
	deny := []string{subjEvents, subjRejections, jsAPI + "STREAM.CREATE.>", jsAPI + "STREAM.UPDATE.>", jsAPI + "STREAM.DELETE.>",
		jsAPI + "STREAM.PURGE.>", jsAPI + "STREAM.MSG.DELETE.>", jsAPI + "CONSUMER.DELETE.>"}
	switch r {
	case RoleLedger:
		return &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{">"}},
			Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}},
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

// AuditorStreamAPI lists the JetStream API subjects that reading stream s needs, and no more:
//
//	STREAM.INFO.s               stream handle, head, configuration check
//	CONSUMER.CREATE.s.>         an ordered (ephemeral pull) consumer with one filter subject
//	CONSUMER.MSG.NEXT.s.>       its pull requests
//	DIRECT.GET.s                a message by position, or the next one on a subject
//	DIRECT.GET.s.>              the last message on a subject
//
// The ledger's streams allow direct gets; a stream without allow_direct would also need
// STREAM.MSG.GET.s, and an unfiltered consumer CONSUMER.CREATE.s (both left out on purpose).
func AuditorStreamAPI(s string) []string {
	return []string{
		jsAPI + "STREAM.INFO." + s,
		jsAPI + "CONSUMER.CREATE." + s + ".>",
		jsAPI + "CONSUMER.MSG.NEXT." + s + ".>",
		jsAPI + "DIRECT.GET." + s,
		jsAPI + "DIRECT.GET." + s + ".>",
	}
}

// ServerUsers returns the users and nkey users for the embedded server's options, each with its
// role's permissions. Setting either on natsserver.Options turns authorization on: a client
// without valid credentials cannot connect.
func (c *Config) ServerUsers() ([]*natsserver.User, []*natsserver.NkeyUser, error) {
	if c.ledgerPublic == "" && c.Ledger().NkeySeedFile != "" {
		if err := c.derive(); err != nil {
			return nil, nil, err
		}
	}
	var users []*natsserver.User
	var nkeyUsers []*natsserver.NkeyUser
	for _, u := range c.NATS.Users {
		perms := c.Permissions(u.Role)
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
	return users, nkeyUsers, nil
}

// LedgerOptions are the nats.go options the ledger process authenticates with.
func (c *Config) LedgerOptions() ([]nats.Option, error) {
	l := c.Ledger()
	switch {
	case l.User != "":
		return []nats.Option{nats.UserInfo(l.User, l.Password)}, nil
	case l.NkeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(l.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ledger nkey seed: %v", ErrInvalid, err)
		}
		return []nats.Option{opt}, nil
	}
	return nil, fmt.Errorf("%w: no ledger identity", ErrInvalid)
}
