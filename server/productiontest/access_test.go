package productiontest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/server"
)

// securedLedger starts a ledger with the test access config and returns it with a connection
// as the ledger identity (the test's view of the stream, unaffected by the roles under test).
func securedLedger(t *testing.T) (*server.Server, access, *nats.Conn) {
	t.Helper()
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.Auth = acc.Config
	srv := start(t, cfg)
	admin, _ := as(t, srv.ClientURL(), asLedger())
	waitServing(t, admin)
	return srv, acc, admin
}

func TestNoCredentialsNoConnection(t *testing.T) {
	t.Parallel()
	srv, _, _ := securedLedger(t)
	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo("dashboard", "not-the-password")},
		"unknown user":   {nats.UserInfo("mallory", "x")},
		"bcrypt as text": {nats.UserInfo("ledger", "$2a$04$notthehash")},
	} {
		_, err := nats.Connect(srv.ClientURL(), append(opts, nats.MaxReconnects(0))...)
		require.Error(t, err, name)
		assert.ErrorIs(t, err, nats.ErrAuthorization, name)
	}
}

func TestServiceRole(t *testing.T) {
	t.Parallel()
	srv, acc, admin := securedLedger(t)
	nc, ae := as(t, srv.ClientURL(), asService(acc))
	cl := client(t, nc)

	// Its job: commands and queries.
	_, err := cl.PurchaseLicense(ctxT(t), purchase("svc-1", "acct-svc", "L-svc", "100"))
	require.NoError(t, err)
	a, err := cl.ActivateLicense(ctxT(t), activate("svc-2", "acct-svc", "L-svc"))
	require.NoError(t, err)
	_, err = cl.Query(ctxT(t), "balance", map[string]any{"account_id": "acct-svc", "min_position": a.Position})
	require.NoError(t, err)
	head := streamHead(t, admin)

	// Nothing else: no forged events, no stream admin, no reading the stream, no service discovery.
	require.NoError(t, nc.Publish(jetstore.DefaultSubjects.Of("acct-svc"), []byte(`{"forged":true}`)))
	ae.requireViolation(t, "Publish", jetstore.DefaultSubjects.Of("acct-svc"))
	require.NoError(t, nc.Publish("$JS.API.STREAM.PURGE.LEDGER", nil))
	ae.requireViolation(t, "Publish", "$JS.API.STREAM.PURGE.LEDGER")
	require.NoError(t, nc.Publish("$JS.API.STREAM.INFO.LEDGER", nil))
	ae.requireViolation(t, "Publish", "$JS.API.STREAM.INFO.LEDGER")
	_, err = nc.SubscribeSync("ledger.events.>")
	require.NoError(t, err)
	ae.requireViolation(t, "Subscription", "ledger.events.>")
	_, err = nc.Request("$SRV.PING", nil, refusedWait)
	require.Error(t, err)
	ae.requireViolation(t, "Publish", "$SRV.PING")

	require.NoError(t, admin.Flush())
	assert.Equal(t, head, streamHead(t, admin), "nothing appended by refused publishes")
}

func TestDashboardRole(t *testing.T) {
	t.Parallel()
	srv, _, admin := securedLedger(t)
	seed := client(t, admin)
	a, err := seed.PurchaseLicense(ctxT(t), purchase("d-1", "acct-dash", "L-dash", "50"))
	require.NoError(t, err)

	nc, ae := as(t, srv.ClientURL(), asDashboard())
	cl := client(t, nc)
	_, err = cl.Query(ctxT(t), "licenses", map[string]any{"account_id": "acct-dash", "min_position": a.Position})
	require.NoError(t, err, "the dashboard's job: queries")

	head := streamHead(t, admin)
	ctx, cancel := context.WithTimeout(context.Background(), refusedWait)
	defer cancel()
	_, err = cl.ActivateLicense(ctx, activate("d-2", "acct-dash", "L-dash"))
	require.Error(t, err, "a command as dashboard is never delivered")
	ae.requireViolation(t, "Publish", "ledger.cmd.activate_license")
	require.NoError(t, nc.Publish(jetstore.DefaultSubjects.Of("acct-dash"), []byte(`{}`)))
	ae.requireViolation(t, "Publish", jetstore.DefaultSubjects.Of("acct-dash"))
	require.NoError(t, admin.Flush())
	assert.Equal(t, head, streamHead(t, admin), "nothing appended")
}

func TestAuditorRole(t *testing.T) {
	t.Parallel()
	srv, _, admin := securedLedger(t)
	seed := client(t, admin)
	_, err := seed.PurchaseLicense(ctxT(t), purchase("a-1", "acct-aud", "L-aud", "70"))
	require.NoError(t, err)
	_, err = seed.ActivateLicense(ctxT(t), activate("a-2", "acct-aud", "L-aud"))
	require.NoError(t, err)
	last, err := seed.AllocateCredits(ctxT(t), allocate("a-3", "acct-aud", "20"))
	require.NoError(t, err)

	nc, ae := as(t, srv.ClientURL(), asAuditor())

	// The issue allows the auditor no publish to a ledger. subject beyond queries: asking for a
	// checkpoint is refused (an operator, as the ledger or service identity, asks instead).
	_, err = nc.Request(audit.CheckpointRequestSubject, nil, 500*time.Millisecond)
	require.Error(t, err)
	// Its job, through the audit package exactly as `creditledger audit` does it: a full
	// verification (ordered consumers over LEDGER and LEDGER_CHECKPOINTS, stream info, direct
	// gets), with a checkpoint the ledger signed on request of the admin connection.
	_, err = admin.Request(audit.CheckpointRequestSubject, nil, waitFor)
	require.NoError(t, err)
	ctx := ctxT(t)
	src, err := audit.NewSource(ctx, nc)
	require.NoError(t, err)
	rep, err := audit.Verify(ctx, src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "findings: %v", rep.Findings)
	assert.Equal(t, last.Position, rep.HeadPosition)
	assert.GreaterOrEqual(t, rep.Checkpoints, 1)
	cps, err := src.Checkpoints(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, cps)
	// One account's events, read with direct gets on its partitioned subject (ledger.events.<p>.<id>).
	one, err := audit.Verify(ctx, src, audit.VerifyOptions{AccountID: "acct-aud"})
	require.NoError(t, err)
	assert.True(t, one.OK, "findings: %v", one.Findings)
	assert.Equal(t, uint64(3), one.Events)

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	m, err := st.GetMsg(ctx, last.Position)
	require.NoError(t, err, "direct get by position")
	assert.Equal(t, jetstore.DefaultSubjects.Of("acct-aud"), m.Subject)
	_, err = st.GetLastMsgForSubject(ctx, jetstore.DefaultSubjects.Of("acct-aud"))
	require.NoError(t, err, "direct get of an account's last event")
	_, err = client(t, nc).Query(ctx, "balance", map[string]any{"account_id": "acct-aud", "min_position": last.Position})
	require.NoError(t, err)
	// Its reads needed nothing outside its permissions (the checkpoint request above was refused
	// on purpose).
	for _, e := range ae.all() {
		assert.Contains(t, e, `Publish to "ledger.audit.checkpoint"`, "the auditor's reads needed nothing else outside its permissions")
	}

	// Nothing else: no publish to ledger subjects, no purge, delete or edit of the store.
	head := streamHead(t, admin)
	for _, subj := range []string{
		jetstore.DefaultSubjects.Of("acct-aud"), "ledger.cmd.allocate_credits",
		"$JS.API.STREAM.PURGE.LEDGER", "$JS.API.STREAM.DELETE.LEDGER", "$JS.API.STREAM.MSG.DELETE.LEDGER",
		"$JS.API.STREAM.UPDATE.LEDGER", "$JS.API.STREAM.PURGE.LEDGER_CHECKPOINTS",
		"$JS.API.STREAM.CREATE.EVIL", "$JS.API.CONSUMER.DELETE.LEDGER.x", "$JS.API.STREAM.INFO.KV_LEDGER_IDS",
	} {
		require.NoError(t, nc.Publish(subj, []byte(`{}`)))
		ae.requireViolation(t, "Publish", subj)
	}
	_, err = st.Info(ctx)
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(context.Background(), refusedWait)
	defer cancel()
	err = js.DeleteStream(rctx, jetstore.StreamName)
	require.Error(t, err)
	require.NoError(t, admin.Flush())
	assert.Equal(t, head, streamHead(t, admin), "nothing appended, nothing purged")
	info, err := st.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, head, info.State.Msgs, "every event still there")
}

// No client role can write or read the command-id record (LEDGER_COMMANDS): a service that could
// create a key there would hold another client's command_id for an account of its choosing, and
// every later use of it would be refused idempotency_key_reused on a node that records (a denial
// of service). The creates, reads, purges and deletes are refused and nothing lands in it.
func TestClientsCannotTouchTheCommandRecord(t *testing.T) {
	t.Parallel()
	srv, acc, admin := securedLedger(t)
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	bucket, err := js.Stream(ctxT(t), "KV_"+jetstore.CommandsBucket)
	require.NoError(t, err, "the node opened the record")
	before, err := bucket.Info(ctxT(t))
	require.NoError(t, err)

	for role, opts := range map[string]natsconn.Options{"service": asService(acc), "dashboard": asDashboard(), "auditor": asAuditor()} {
		nc, ae := as(t, srv.ClientURL(), opts)
		for _, subj := range []string{
			"$KV." + jetstore.CommandsBucket + ".c.0123456789abcdef0123456789abcdef",
			"$JS.API.DIRECT.GET.KV_" + jetstore.CommandsBucket + ".$KV." + jetstore.CommandsBucket + ".c.x",
			"$JS.API.STREAM.MSG.GET.KV_" + jetstore.CommandsBucket,
			"$JS.API.STREAM.PURGE.KV_" + jetstore.CommandsBucket,
			"$JS.API.STREAM.DELETE.KV_" + jetstore.CommandsBucket,
		} {
			require.NoError(t, nc.Publish(subj, []byte("victim-account")), role)
			ae.requireViolation(t, "Publish", subj)
		}
	}
	require.NoError(t, admin.Flush())
	after, err := bucket.Info(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, before.State.Msgs, after.State.Msgs, "nothing recorded by a client")
}
