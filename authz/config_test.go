package authz_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/authz"
)

const validYAML = `
nats:
  users:
    - {role: ledger, user: ledger, password: ledger-secret-0001}
    - {role: service, user: orders, password: "$2a$11$abcdefghijklmnopqrstuu0123456789abcdefghijklmnopqrstu"}
    - {role: dashboard, user: dash, password: dash-secret}
    - {role: auditor, user: audit, password: audit-secret}
http:
  tokens:
    - {role: dashboard, token: dashboard-token-0123456789}
    - {role: auditor, token_sha256: "%s"}
`

func sha(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

func TestLoadYAMLAndJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	y := filepath.Join(dir, "access.yaml")
	require.NoError(t, os.WriteFile(y, []byte(fmt.Sprintf(validYAML, sha("auditor-token-0123456789"))), 0o600))
	c, err := authz.Load(y)
	require.NoError(t, err)
	assert.Equal(t, "ledger", c.Ledger().User)

	role, ok := c.TokenRole("dashboard-token-0123456789")
	assert.True(t, ok)
	assert.Equal(t, authz.RoleDashboard, role)
	role, ok = c.TokenRole("auditor-token-0123456789")
	assert.True(t, ok)
	assert.Equal(t, authz.RoleAuditor, role)
	_, ok = c.TokenRole("auditor-token-012345678")
	assert.False(t, ok)
	_, ok = c.TokenRole("")
	assert.False(t, ok)

	j := filepath.Join(dir, "access.json")
	require.NoError(t, os.WriteFile(j, []byte(`{"nats":{"users":[{"role":"ledger","user":"l","password":"p"}]},"http":{"tokens":[]}}`), 0o600))
	c, err = authz.Load(j)
	require.NoError(t, err)
	assert.Equal(t, "l", c.Ledger().User)
}

func TestLedgerNkeySeedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ledger.nk"), seed, 0o600))
	cfg := filepath.Join(dir, "access.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("nats:\n  users:\n    - {role: ledger, nkey_seed_file: ledger.nk}\n"), 0o600))
	c, err := authz.Load(cfg)
	require.NoError(t, err)
	users, nk, err := c.ServerUsers()
	require.NoError(t, err)
	assert.Empty(t, users)
	require.Len(t, nk, 1)
	assert.Equal(t, pub, nk[0].Nkey, "the ledger's public nkey is derived from its seed, relative to the config file")
	_, err = c.LedgerOptions()
	require.NoError(t, err)
}

func TestInvalidConfigs(t *testing.T) {
	t.Parallel()
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	cases := map[string]string{
		"no ledger":            "nats: {users: [{role: service, user: s, password: p}]}",
		"two ledgers":          "nats: {users: [{role: ledger, user: a, password: p}, {role: ledger, user: b, password: p}]}",
		"unknown role":         "nats: {users: [{role: ledger, user: a, password: p}, {role: admin, user: b, password: p}]}",
		"unknown field":        "nats: {users: [{role: ledger, user: a, password: p, permissions: all}]}",
		"user without secret":  "nats: {users: [{role: ledger, user: a}]}",
		"two credentials":      "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: b, password: p, nkey: " + pub + "}]}",
		"duplicate user":       "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: a, password: q}]}",
		"bad nkey":             "nats: {users: [{role: ledger, user: a, password: p}, {role: service, nkey: UNOPE}]}",
		"bcrypt ledger":        "nats: {users: [{role: ledger, user: a, password: \"$2a$11$xyz\"}]}",
		"ledger public nkey":   "nats: {users: [{role: ledger, nkey: " + pub + "}]}",
		"seed for non-ledger":  "nats: {users: [{role: ledger, user: a, password: p}, {role: service, nkey_seed_file: x.nk}]}",
		"metrics as nats role": "nats: {users: [{role: ledger, user: a, password: p}, {role: metrics, user: b, password: p}]}",
		"short token":          "nats: {users: [{role: ledger, user: a, password: p}]}\nhttp: {tokens: [{role: dashboard, token: short}]}",
		"service token":        "nats: {users: [{role: ledger, user: a, password: p}]}\nhttp: {tokens: [{role: service, token: 0123456789abcdefghij}]}",
		"token and hash":       "nats: {users: [{role: ledger, user: a, password: p}]}\nhttp: {tokens: [{role: auditor, token: 0123456789abcdefghij, token_sha256: " + sha("x") + "}]}",
		"bad hash":             "nats: {users: [{role: ledger, user: a, password: p}]}\nhttp: {tokens: [{role: auditor, token_sha256: abc}]}",
		"bad stream":           "nats: {users: [{role: ledger, user: a, password: p}], auditor_streams: [\"LEDGER.>\"]}",
		"half route auth":      "nats: {users: [{role: ledger, user: a, password: p}], cluster: {user: r}}",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := authz.Parse([]byte(doc), false)
			require.ErrorIs(t, err, authz.ErrInvalid)
		})
	}
}

func TestPermissionsAreLeastPrivilege(t *testing.T) {
	t.Parallel()
	c, err := authz.Parse([]byte(fmt.Sprintf(validYAML, sha("x"))), false)
	require.NoError(t, err)
	user := func(name string) authz.User {
		for _, u := range c.NATS.Users {
			if u.User == name {
				return u
			}
		}
		t.Fatalf("no user %s", name)
		return authz.User{}
	}
	svc := c.Permissions(user("orders"))
	assert.ElementsMatch(t, []string{"ledger.cmd.>", "ledger.query.>"}, svc.Publish.Allow)
	assert.Contains(t, svc.Publish.Deny, "ledger.events.>")
	assert.Contains(t, svc.Publish.Deny, "ledger.fence.>", "nobody but the ledger writes an ownership record")
	assert.Equal(t, []string{"_INBOX_orders.>"}, svc.Subscribe.Allow, "its own inbox prefix only")
	dash := c.Permissions(user("dash"))
	assert.Equal(t, []string{"ledger.query.>"}, dash.Publish.Allow)
	assert.Equal(t, []string{"_INBOX_dash.>"}, dash.Subscribe.Allow)
	aud := c.Permissions(user("audit"))
	assert.Contains(t, aud.Publish.Allow, "$JS.API.DIRECT.GET.LEDGER.>")
	assert.Contains(t, aud.Publish.Allow, "$JS.API.STREAM.INFO.LEDGER_CHECKPOINTS")
	for _, s := range aud.Publish.Allow {
		assert.NotContains(t, s, "PURGE")
		assert.NotContains(t, s, "DELETE")
		assert.NotContains(t, s, "CONSUMER", "no consumers: a consumer's deliver subject cannot be restricted")
		assert.NotContains(t, s, "ledger.events")
		assert.NotContains(t, s, "ledger.cmd")
		assert.NotContains(t, s, "ledger.audit")
	}
	led := c.Permissions(c.Ledger())
	assert.Equal(t, []string{"_INBOX_ledger.>", authz.SubjectAuditRead, authz.SubjectAuditInfo}, led.Subscribe.Allow,
		"its own inbox, and the auditors' direct gets and stream infos, which it bounds and passes on")
	assert.Subset(t, led.Publish.Deny, []string{"_INBOX.>", "_INBOX_orders.>", "_INBOX_dash.>", "_INBOX_audit.>", authz.SubjectAuditRead, authz.SubjectAuditInfo},
		"the appender answers no one, and auditors' reads come only through their imports")
	resp := c.ResponderPermissions()
	assert.ElementsMatch(t, []string{"_INBOX_ledger.>", "_INBOX_orders.>", "_INBOX_dash.>", "_INBOX_audit.>",
		authz.SubjectOwner, authz.SubjectNode, authz.ResponderInboxPrefix + ".>", "_R_.>"}, resp.Publish.Allow,
		"the responder publishes into the users' inboxes (and the server's replies of the auditors' imported queries), passes commands to partition owners and probes nodes (answered into its own inbox)")
	assert.Contains(t, resp.Subscribe.Allow, authz.SubjectNode, "the responder answers liveness probes")
	for name, p := range map[string]*natsserver.Permissions{"service": svc, "dashboard": dash, "auditor": aud} {
		assert.Contains(t, p.Publish.Deny, authz.SubjectNode, "%s may not probe nodes", name)
		assert.Contains(t, p.Subscribe.Deny, authz.SubjectNode, "%s may not answer for a node", name)
		assert.Contains(t, p.Publish.Deny, authz.SubjectOwner, "%s may not pass commands to an owner", name)
		assert.Contains(t, p.Subscribe.Deny, authz.SubjectOwner, "%s may not take commands meant for an owner", name)
		assert.Contains(t, p.Publish.Deny, authz.SubjectAuditRead, "%s may not send the ledger a direct get with a reply of its choice", name)
		assert.Contains(t, p.Subscribe.Deny, authz.SubjectAuditRead, "%s may not take the auditors' direct gets", name)
		assert.Contains(t, p.Publish.Deny, authz.SubjectAuditInfo, "%s may not send the ledger a stream info with a reply of its choice", name)
		assert.Contains(t, p.Subscribe.Deny, authz.SubjectAuditInfo, "%s may not take the auditors' stream infos", name)
	}
	for _, subj := range []string{authz.SubjectAuditRead, authz.SubjectAuditInfo} {
		assert.NotContains(t, resp.Publish.Allow, subj)
		assert.NotContains(t, resp.Subscribe.Allow, subj)
	}
	assert.Nil(t, c.Permissions(authz.User{Role: authz.RoleMetrics}), "metrics is an HTTP role only")
}

func TestInboxPrefixes(t *testing.T) {
	t.Parallel()
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	c, err := authz.Parse([]byte("nats: {users: [{role: ledger, user: a, password: p}, {role: service, nkey: "+pub+"}, "+
		"{role: dashboard, user: d, password: p, inbox_prefix: _INBOX_web}]}"), false)
	require.NoError(t, err)
	assert.Equal(t, []string{"_INBOX_a", "_INBOX_" + pub, "_INBOX_web"}, c.ClientInboxPrefixes())
	for name, doc := range map[string]string{
		"dotted user without prefix": "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: a.b, password: p}]}",
		"prefix not an inbox":        "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: b, password: p, inbox_prefix: ledger}]}",
		"prefix with a dot":          "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: b, password: p, inbox_prefix: _INBOX_x.y}]}",
		"two users, one prefix":      "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: b, password: p, inbox_prefix: _INBOX_a}]}",
		"the responder's name":       "nats: {users: [{role: ledger, user: a, password: p}, {role: service, user: creditledger-responder, password: p}]}",
	} {
		_, err := authz.Parse([]byte(doc), false)
		assert.ErrorIs(t, err, authz.ErrInvalid, name)
	}
}

func TestShippedConfigsLoad(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"../deploy/access.yaml", "../docs/access.example.yaml"} {
		c, err := authz.Load(path)
		require.NoError(t, err, path)
		users, nkeys, err := c.ServerUsers()
		require.NoError(t, err, path)
		assert.NotEmpty(t, append([]any{}, len(users), len(nkeys)), path)
		accounts, err := c.ServerAccounts()
		require.NoError(t, err, path)
		names := []string{}
		for _, a := range accounts {
			names = append(names, a.Name)
			if a.Name == "$G" { // an auditor's reads do not hold routes back for minutes
				for _, subj := range []string{authz.AuditReadSubject("LEDGER"), authz.AuditReadSubject("LEDGER") + ".>", authz.AuditInfoSubject("LEDGER")} {
					d, err := a.ServiceExportResponseThreshold(subj)
					require.NoError(t, err, path)
					assert.Equal(t, 10*time.Second, d, path)
				}
				// The JetStream API's direct gets and stream infos are not exported: the
				// auditors' reach the ledger, which bounds them.
				for _, subj := range []string{"$JS.API.DIRECT.GET.LEDGER", "$JS.API.STREAM.INFO.LEDGER"} {
					_, err := a.ServiceExportResponseThreshold(subj)
					assert.Error(t, err, path, subj)
				}
			}
		}
		assert.ElementsMatch(t, []string{"$G", authz.AuditAccount}, names, path)
	}
}
