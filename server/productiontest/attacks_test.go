package productiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	commandservice "github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/server"
)

// The attacks of issue 11, each tried as an outside client would on a ledger run with the real
// access config (docs/SECURITY.md lists them with these tests).

// attackLedger is a secured ledger that signs checkpoints only on request, so the checkpoint
// stream moves only when someone makes it.
func attackLedger(t *testing.T) (*server.Server, access, *nats.Conn) {
	t.Helper()
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.Auth = acc.Config
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	srv := start(t, cfg)
	admin, _ := as(t, srv.ClientURL(), asLedger())
	waitServing(t, admin)
	return srv, acc, admin
}

// streamHeads is every stream's last sequence, by name: a stream created, deleted, purged or
// written shows up as a difference. The lease bucket is left out: the ledger itself rewrites it
// every lease tick (heartbeats and renewals, server/partitions.go).
func streamHeads(t *testing.T, nc *nats.Conn) map[string]uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	out := map[string]uint64{}
	names := js.StreamNames(ctxT(t))
	for name := range names.Name() {
		if name == "KV_"+jetstore.LeaseBucket {
			continue
		}
		st, err := js.Stream(ctxT(t), name)
		require.NoError(t, err)
		info, err := st.Info(ctxT(t))
		require.NoError(t, err)
		out[name] = info.State.LastSeq
	}
	require.NoError(t, names.Err())
	return out
}

// metricValue polls GET /metrics until series reaches want.
func metricValue(t *testing.T, srv *server.Server, series string, want float64) {
	t.Helper()
	var text string
	require.Eventually(t, func() bool {
		_, text = httpDo(t, "http://"+srv.HTTPAddr()+"/metrics", metricsToken)
		return sample(text, series) == want
	}, waitFor, pollTick, "%s never reached %v:\n%s", series, want, text)
}

// replyTargets are subjects a requester could name as its reply subject to make the ledger
// publish there: every stream's subjects, the JetStream API, and the ledger's own endpoints.
var replyTargets = []string{
	jetstore.DefaultSubjects.Of("victim"),
	"ledger.events.victim", // an account subject, what a store created before partitioned subjects captures
	"ledger.checkpoints",
	"ledger.rejections.round",
	"ledger.rejections.victim",
	"$O." + jetstore.SnapshotBucket + ".M.d3JpdGVyLXY0",
	"$O." + jetstore.SnapshotBucket + ".C.x",
	"$KV." + jetstore.ClaimsBucket + ".x",
	"$KV." + jetstore.CommandsBucket + ".c.x",
	"$JS.API.STREAM.DELETE." + jetstore.RejectionStream,
	"$JS.API.STREAM.PURGE." + audit.CheckpointStream,
	"ledger.audit.checkpoint",
	"ledger.cmd.purchase_license",
}

// TestReplySubjectsCannotReachTheLedger is the reply-subject matrix of issue 11: every role sends
// a query, and a command where it may, with a reply subject on each stream's subjects, the
// JetStream API and the ledger's own endpoints. None is answered (each is counted), nothing is
// stored, deleted or purged, the victim account still works and the history verifies.
func TestReplySubjectsCannotReachTheLedger(t *testing.T) {
	t.Parallel()
	srv, acc, admin := attackLedger(t)
	before := streamHeads(t, admin)

	roles := map[string]*nats.Conn{}
	roles["service"], _ = as(t, srv.ClientURL(), asService(acc))
	roles["dashboard"], _ = as(t, srv.ClientURL(), asDashboard())
	roles["auditor"], _ = as(t, srv.ClientURL(), asAuditor())
	delivered := 0
	for role, nc := range roles {
		for i, target := range replyTargets {
			query := &nats.Msg{Subject: "ledger.query.balance", Reply: target, Data: []byte(`{"account_id":"victim"}`)}
			require.NoError(t, nc.PublishMsg(query))
			if role != "auditor" { // the auditor's queries come through its account's import, and the
				delivered++ // server answers them in that account, whatever the reply (see below)
			}
			cmd := &nats.Msg{Subject: "ledger.cmd.purchase_license", Reply: target, Data: []byte(fmt.Sprintf(
				`{"command_id":"%s-%d","account_id":"victim","license_id":"L-%s-%d","source":"sales","credits":"5"}`, role, i, role, i))}
			require.NoError(t, nc.PublishMsg(cmd))
			if role == "service" { // the others may not send commands at all
				delivered++
			}
		}
		// Each endpoint serves one subscription's messages in order, so once a request after them
		// is answered, every one before it has been handled (a malformed command changes nothing).
		_, err := nc.Request("ledger.query.balance", []byte(`{"account_id":"victim"}`), waitFor)
		require.NoError(t, err)
		if role == "service" {
			_, err := nc.Request("ledger.cmd.purchase_license", []byte(`{}`), waitFor)
			require.NoError(t, err)
		}
	}

	// Nothing stored, deleted or purged; no command executed; every request counted.
	assert.Equal(t, before, streamHeads(t, admin))
	metricValue(t, srv, `creditledger_requests_unanswered_total{reason="reply_outside_inboxes"}`, float64(delivered))
	// The victim account works.
	svc := client(t, roles["service"])
	res, err := svc.PurchaseLicense(ctxT(t), purchase("v-1", "victim", "L-victim", "10"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Version)
	// And the history verifies, read as the auditor.
	src, err := audit.NewSource(ctxT(t), roles["auditor"])
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
}

// TestAuditorCannotPointTheServerAtTheLedger: the auditor reads with direct gets only; it may not
// create a consumer (a push consumer delivering into ledger.audit.checkpoint fed itself 5,971
// checkpoints in 3 s; one delivering into ledger.cmd.* sent events to the ledger as commands).
// And the command handler ignores stream deliveries even when a privileged identity sets one up.
func TestAuditorCannotPointTheServerAtTheLedger(t *testing.T) {
	t.Parallel()
	srv, _, admin := attackLedger(t)
	seed := client(t, admin)
	_, err := seed.PurchaseLicense(ctxT(t), purchase("p-1", "acct-p", "L-p", "10"))
	require.NoError(t, err)
	_, err = admin.Request(audit.CheckpointRequestSubject, nil, waitFor)
	require.NoError(t, err)
	before := streamHeads(t, admin)
	consumersNow := map[string]int{}
	for _, stream := range []string{audit.CheckpointStream, jetstore.StreamName} {
		consumersNow[stream] = consumerCount(t, admin, stream) // the ledger's own readers
	}

	nc, ae := as(t, srv.ClientURL(), asAuditor())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	for stream, deliver := range map[string]string{
		audit.CheckpointStream: audit.CheckpointRequestSubject,
		jetstore.StreamName:    "ledger.cmd.allocate_credits",
	} {
		body, _ := json.Marshal(map[string]any{"stream_name": stream, "config": map[string]any{
			"deliver_subject": deliver, "deliver_group": "q", "ack_policy": "none", "deliver_policy": "all"}})
		require.NoError(t, nc.Publish("$JS.API.CONSUMER.CREATE."+stream, body))
		ae.requireViolation(t, "Publish", "$JS.API.CONSUMER.CREATE."+stream)
		rctx, cancel := context.WithTimeout(context.Background(), refusedWait)
		_, err = js.CreateOrUpdateConsumer(rctx, stream, jetstream.ConsumerConfig{Durable: "pulled"})
		cancel()
		require.Error(t, err, "no consumer of any kind for the auditor")
	}
	for stream, n := range consumersNow {
		assert.Equal(t, n, consumerCount(t, admin, stream), "no consumer added on %s", stream)
	}
	adminJS, err := jetstream.New(admin)
	require.NoError(t, err)

	// Defence in depth: even a push consumer a privileged identity points at ledger.cmd.* is
	// ignored (its deliveries are not requests: their reply subject is not an inbox).
	st, err := adminJS.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]any{"stream_name": jetstore.StreamName, "config": map[string]any{
		"deliver_subject": "ledger.cmd.allocate_credits", "deliver_group": "q", // micro's queue group
		"ack_policy": "explicit", "deliver_policy": "all"}})
	resp, err := admin.Request("$JS.API.CONSUMER.CREATE."+jetstore.StreamName, body, waitFor)
	require.NoError(t, err)
	require.NotContains(t, string(resp.Data), `"error"`)

	// Each message of the stream is delivered once (the node's ownership records too).
	metricValue(t, srv, `creditledger_requests_unanswered_total{reason="reply_outside_inboxes"}`, float64(before[jetstore.StreamName]))
	// And a command published without a reply subject is not a request: not decided, counted.
	require.NoError(t, admin.Publish("ledger.cmd.purchase_license",
		[]byte(`{"command_id":"no-reply","account_id":"acct-nr","license_id":"L-nr","source":"sales","credits":"5"}`)))
	metricValue(t, srv, `creditledger_requests_unanswered_total{reason="no_reply"}`, 1)
	info, err := st.Info(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, before[jetstore.StreamName], info.State.LastSeq, "no event became a command")
	assert.Equal(t, before, streamHeads(t, admin))
}

// consumerCount is how many consumers a stream has.
func consumerCount(t *testing.T, nc *nats.Conn, stream string) int {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), stream)
	require.NoError(t, err)
	info, err := st.Info(ctxT(t))
	require.NoError(t, err)
	return info.State.Consumers
}

// TestInboxesArePrivate: each role subscribes only to its own inbox prefix. Subscribing to
// _INBOX.> (where every reply used to arrive, the ledger's own consumer deliveries included) or
// to another role's prefix is refused, while each role's own requests work.
func TestInboxesArePrivate(t *testing.T) {
	t.Parallel()
	srv, acc, _ := attackLedger(t)
	dash, dashErrs := as(t, srv.ClientURL(), asDashboard())
	aud, audErrs := as(t, srv.ClientURL(), asAuditor())
	svc, _ := as(t, srv.ClientURL(), asService(acc))
	snoop := map[*nats.Conn]*asyncErrors{dash: dashErrs, aud: audErrs}
	others := map[*nats.Conn][]string{
		dash: {"_INBOX.>", "_INBOX_ledger.>", "_INBOX_auditor.>", "_INBOX_" + acc.ServicePublic + ".>", "_INBOX_creditledger-responder.>", ">"},
		aud:  {"_INBOX.>", "_INBOX_ledger.>", "_INBOX_dashboard.>", "_INBOX_" + acc.ServicePublic + ".>"},
	}
	for nc, subjects := range others {
		for _, subj := range subjects {
			_, err := nc.SubscribeSync(subj)
			require.NoError(t, err)
			snoop[nc].requireViolation(t, "Subscription", subj)
		}
	}
	// Each role's own inbox works: a command (service) and queries (dashboard, auditor) answer.
	bought, err := client(t, svc).PurchaseLicense(ctxT(t), purchase("i-1", "acct-i", "L-i", "10"))
	require.NoError(t, err)
	for _, nc := range []*nats.Conn{dash, aud} {
		// Read-your-writes at the purchase's own position (the start's ownership records sit
		// below it, so position 1 no longer implies the purchase was projected).
		_, err := client(t, nc).Query(ctxT(t), "balance", map[string]any{"account_id": "acct-i", "min_position": bought.Position})
		require.NoError(t, err)
	}
	// A client without the prefix (the NATS default _INBOX.) gets no replies at all.
	plain, plainErrs := connect(t, srv.ClientURL(), nats.UserInfo("dashboard", dashboardPassword))
	_, err = plain.Request("ledger.query.balance", []byte(`{"account_id":"acct-i"}`), refusedWait)
	require.Error(t, err)
	require.Eventually(t, func() bool {
		for _, e := range plainErrs.all() {
			if strings.Contains(e, `Permissions Violation for Subscription to "_INBOX.`) {
				return true
			}
		}
		return false
	}, waitFor, pollTick, "%v", plainErrs.all())
}

// TestForeignMessageRefusesTheAccount is the reproduction of a foreign message in an account's
// history (issue 11, 1 and 5) with a command of two records, right after the message (before the
// projector may have seen it): the account's head check refuses the append, the account answers
// history_broken with the position, nothing is appended to it, and the other accounts go on.
// TestForeignMessageRefusesTheAccountAtOnce is the single-record form.
func TestForeignMessageRefusesTheAccount(t *testing.T) {
	t.Parallel()
	srv, acc, admin := attackLedger(t)
	svc := client(t, func() *nats.Conn { nc, _ := as(t, srv.ClientURL(), asService(acc)); return nc }())
	_, err := svc.PurchaseLicense(ctxT(t), purchase("f-1", "victim", "L-f", "10"))
	require.NoError(t, err)
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	ack, err := js.Publish(ctxT(t), jetstore.DefaultSubjects.Of("victim"), []byte(`{"ok":true,"account_id":"x"}`))
	require.NoError(t, err)
	head := streamHead(t, admin)
	// A purchase whose contract started long ago appends two records (the purchase and its
	// renewal): the partition's fence rides on the second and the first keeps the account's head
	// check. (An append of a single record carries the fence instead of the head check; the
	// projector's report closes that: TestForeignMessageRefusesTheAccountAtOnce.)
	old := purchase("f-2", "victim", "L-old", "5")
	start := "2020-01-01T00:00:00Z"
	old.ContractStart = &start
	_, err = svc.PurchaseLicense(ctxT(t), old)
	require.ErrorIs(t, err, ledger.ErrHistoryBroken)
	var le *ledger.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, itoa(ack.Sequence), le.Data["position"])
	assert.Equal(t, head, streamHead(t, admin), "nothing appended")
	_, err = svc.PurchaseLicense(ctxT(t), purchase("f-3", "other", "L-o", "10"))
	require.NoError(t, err)
}

// TestForeignMessageRefusesTheAccountAtOnce is the reproduction of issue 11 in its plain form:
// the next command on the account appends a single record, which carries the partition's fence
// in place of the account's head check (docs/OPERATIONS.md, the partition fence), so JetStream
// does not refuse it. The projector parks the foreign message and reports it to the writer
// (projections.WithBrokenHook, writer.MarkBroken): once the ledger has seen the message, the
// command is refused history_broken with its position and nothing is appended after it.
func TestForeignMessageRefusesTheAccountAtOnce(t *testing.T) {
	t.Parallel()
	srv, acc, admin := attackLedger(t)
	svc := client(t, func() *nats.Conn { nc, _ := as(t, srv.ClientURL(), asService(acc)); return nc }())
	_, err := svc.PurchaseLicense(ctxT(t), purchase("f1-1", "victim", "L-f1", "10"))
	require.NoError(t, err)
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	ack, err := js.Publish(ctxT(t), jetstore.DefaultSubjects.Of("victim"), []byte(`{"ok":true,"account_id":"x"}`))
	require.NoError(t, err)
	// The ledger has seen it: the projector parked it (and reported it before counting it).
	var body string
	require.Eventually(t, func() bool {
		_, body = httpDo(t, "http://"+srv.HTTPAddr()+"/healthz", "")
		return jsonField(t, body, "parked_count") == float64(1)
	}, waitFor, pollTick, "the projector never parked the foreign message: %s", body)
	head := streamHead(t, admin)
	_, err = svc.PurchaseLicense(ctxT(t), purchase("f1-2", "victim", "L-f1b", "5")) // one record
	require.ErrorIs(t, err, ledger.ErrHistoryBroken)
	var le *ledger.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, itoa(ack.Sequence), le.Data["position"])
	assert.Equal(t, head, streamHead(t, admin), "nothing appended after the foreign message")
	_, err = svc.PurchaseLicense(ctxT(t), purchase("f1-3", "other", "L-o1", "10"))
	require.NoError(t, err)
	metricValue(t, srv, "creditledger_accounts_marked_broken_total", 1) // the ledger's own events mark nothing
}

// TestMessageUnderAnotherPartitionLeavesTheAccount: a message filed under another partition's
// subject (ledger.events.<q>.victim, q not victim's partition) is no event of the account: the
// writer never reads it, at a load or after, and the account's own subject holds an unbroken
// history. The projector parks it, but must not report it to the writer as a break: the live
// writer refused the account history_broken, which a restarted one (its load never sees the
// message) accepts.
func TestMessageUnderAnotherPartitionLeavesTheAccount(t *testing.T) {
	t.Parallel()
	srv, acc, admin := attackLedger(t)
	svc := client(t, func() *nats.Conn { nc, _ := as(t, srv.ClientURL(), asService(acc)); return nc }())
	_, err := svc.PurchaseLicense(ctxT(t), purchase("w-1", "victim", "L-w", "10"))
	require.NoError(t, err)
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	n := srv.PartitionCount()
	other := fmt.Sprintf("%s%d.victim", jetstore.SubjectPrefix, (ledger.PartitionOf("victim", n)+1)%n)
	_, err = js.Publish(ctxT(t), other, []byte(`{"ok":true,"account_id":"victim"}`))
	require.NoError(t, err)
	var body string
	require.Eventually(t, func() bool {
		_, body = httpDo(t, "http://"+srv.HTTPAddr()+"/healthz", "")
		return jsonField(t, body, "parked_count") == float64(1)
	}, waitFor, pollTick, "the projector never parked the message: %s", body)
	_, err = svc.PurchaseLicense(ctxT(t), purchase("w-2", "victim", "L-w2", "5"))
	require.NoError(t, err, "victim's own history is whole")
}

// TestOpenRoutesHoldNoData: /healthz and /readyz answer without a token with up or not and
// counts, never account ids or event content; the parked messages' details need the metrics or
// auditor token.
func TestOpenRoutesHoldNoData(t *testing.T) {
	t.Parallel()
	srv, _, admin := attackLedger(t)
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	_, err = js.Publish(ctxT(t), jetstore.DefaultSubjects.Of("secret-account"), []byte(`{"secret":"event content"}`))
	require.NoError(t, err)
	base := "http://" + srv.HTTPAddr()
	var body string
	require.Eventually(t, func() bool {
		var status int
		status, body = httpDo(t, base+"/healthz", "")
		return status == 200 && jsonField(t, body, "parked_count") == float64(1)
	}, waitFor, pollTick, "the projector never parked the foreign message: %s", body)
	for _, route := range []string{"/healthz", "/readyz"} {
		status, body := httpDo(t, base+route, "")
		assert.Equal(t, 200, status, route)
		assert.NotContains(t, body, "secret", route)
		assert.NotContains(t, body, "event content", route)
	}
	status, _ := httpDo(t, base+"/healthz/details", "")
	assert.Equal(t, 401, status)
	status, _ = httpDo(t, base+"/healthz/details", dashboardToken)
	assert.Equal(t, 403, status)
	for _, token := range []string{metricsToken, auditorToken} {
		status, body := httpDo(t, base+"/healthz/details", token)
		assert.Equal(t, 200, status)
		assert.Contains(t, body, "secret-account")
	}
}

func jsonField(t *testing.T, body, field string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil
	}
	return m[field]
}

// TestExternalDeploymentResponder: towards --nats-url the process cannot make users, so the
// deployment gives it a second one for answering (ResponderConn, serve --nats-responder-*), which
// may publish only into the clients' inboxes. Then even a reply the process does not check itself
// (the micro $SRV discovery verbs) cannot land in a stream.
func TestExternalDeploymentResponder(t *testing.T) {
	t.Parallel()
	perm := func(pub, sub []string) *natsserver.Permissions {
		return &natsserver.Permissions{Publish: &natsserver.SubjectPermission{Allow: pub}, Subscribe: &natsserver.SubjectPermission{Allow: sub}}
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Users: []*natsserver.User{
			{Username: "ledger", Password: "l", Permissions: perm([]string{">"}, []string{"_INBOX_ledger.>"})},
			{Username: "answers", Password: "a", Permissions: perm([]string{"_INBOX_client.>", "ledger.owner.>", "ledger.node.>"}, // as SECURITY.md says
				[]string{"ledger.cmd.>", "ledger.query.>", "ledger.audit.>", "$SRV.>", "ledger.owner.>", "ledger.node.>", "_INBOX_answers.>"})},
			{Username: "client", Password: "c", Permissions: perm([]string{"ledger.>", "$SRV.>"}, []string{"_INBOX_client.>"})},
		}})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(waitFor))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	cfg := baseConfig(t)
	cfg.NATSURL = ns.ClientURL()
	cfg.HTTPListen = ""
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	cfg.NATSConn = natsconn.Options{User: "ledger", Password: "l"}
	cfg.ResponderConn = &natsconn.Options{User: "answers", Password: "a"}
	start(t, cfg)
	client, _ := as(t, ns.ClientURL(), natsconn.Options{User: "client", Password: "c"})
	waitServing(t, client)
	admin, _ := as(t, ns.ClientURL(), natsconn.Options{User: "ledger", Password: "l"})
	before := streamHeads(t, admin)

	ping := &nats.Msg{Subject: "$SRV.PING", Reply: jetstore.DefaultSubjects.Of("victim")}
	require.NoError(t, client.PublishMsg(ping))
	// The discovery verbs still answer a client's inbox (and so show the request was served).
	_, err = client.Request("$SRV.PING", nil, waitFor)
	require.NoError(t, err)
	assert.Equal(t, before, streamHeads(t, admin), "the PING answer was not stored")
}

// TestAuditorJetStreamRepliesCannotReachTheLedger: the JetStream API answers the auditor's stream
// info and direct gets itself, with the server's own identity, on the reply subject the auditor
// chose. Were the auditor in the ledger's NATS account, a STREAM.INFO or DIRECT.GET with the reply
// subject ledger.events.victim stored the answer in the victim's history, one with
// $JS.API.STREAM.DELETE.LEDGER_REJECTIONS deleted the rejection stream. The auditor lives in an
// account of its own that imports only its reads (authz.AuditAccount): every answer lands in its
// own account, where no stream and no API listens.
func TestAuditorJetStreamRepliesCannotReachTheLedger(t *testing.T) {
	t.Parallel()
	srv, acc, admin := attackLedger(t)
	seed := client(t, admin)
	_, err := seed.PurchaseLicense(ctxT(t), purchase("j-1", "victim", "L-j", "10"))
	require.NoError(t, err)
	_, err = admin.Request(audit.CheckpointRequestSubject, nil, waitFor)
	require.NoError(t, err)
	before := streamHeads(t, admin)

	aud, ae := as(t, srv.ClientURL(), asAuditor())
	var reads []*nats.Msg // each read the auditor may make: stream info, direct gets one and batched
	for _, stream := range []string{jetstore.StreamName, audit.CheckpointStream} {
		reads = append(reads, &nats.Msg{Subject: "$JS.API.STREAM.INFO." + stream},
			&nats.Msg{Subject: "$JS.API.DIRECT.GET." + stream, Data: []byte(`{"seq":1}`)},
			&nats.Msg{Subject: "$JS.API.DIRECT.GET." + stream, Data: []byte(`{"seq":1,"batch":5}`)})
	}
	reads = append(reads, &nats.Msg{Subject: "$JS.API.DIRECT.GET." + jetstore.StreamName + "." + jetstore.DefaultSubjects.Of("victim")},
		&nats.Msg{Subject: "$JS.API.DIRECT.GET." + audit.CheckpointStream + ".ledger.checkpoints"})
	for _, target := range replyTargets {
		for _, m := range reads {
			require.NoError(t, aud.PublishMsg(&nats.Msg{Subject: m.Subject, Reply: target, Data: m.Data}))
		}
		require.NoError(t, aud.PublishMsg(&nats.Msg{Subject: "ledger.query.balance", Reply: target, Data: []byte(`{"account_id":"victim"}`)}))
	}
	// The reads still work for the auditor itself, and once one after them is answered, the
	// server has handled every one before it.
	_, err = aud.Request("$JS.API.STREAM.INFO."+jetstore.StreamName, nil, waitFor)
	require.NoError(t, err)
	_, err = aud.Request("ledger.query.balance", []byte(`{"account_id":"victim"}`), waitFor)
	require.NoError(t, err)
	require.NoError(t, admin.Flush())
	assert.Empty(t, ae.all(), "each read was within the auditor's permissions")

	assert.Equal(t, before, streamHeads(t, admin), "nothing stored, deleted or purged")
	svc, _ := as(t, srv.ClientURL(), asService(acc))
	_, err = client(t, svc).ActivateLicense(ctxT(t), activate("j-2", "victim", "L-j"))
	require.NoError(t, err, "the victim account still works")
	src, err := audit.NewSource(ctxT(t), aud)
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
}

// TestAuditAccountKeepsTheLedgersData: the auditors' account (authz.AuditAccount) leaves the
// ledger's streams where they have always been, in the global account: a data directory written
// by a ledger without accounts is read, and written on, by one with them.
func TestAuditAccountKeepsTheLedgersData(t *testing.T) {
	t.Parallel()
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.HTTPListen = ""
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	old, err := server.Start(ctx, cfg)
	require.NoError(t, err)
	plain, err := nats.Connect(old.ClientURL())
	require.NoError(t, err)
	before, err := client(t, plain).PurchaseLicense(ctx, purchase("k-1", "kept", "L-k", "10"))
	require.NoError(t, err)
	plain.Close()
	old.Shutdown(context.Background())

	cfg.Auth = acc.Config
	srv := start(t, cfg)
	svc, _ := as(t, srv.ClientURL(), asService(acc))
	res, err := client(t, svc).ActivateLicense(ctxT(t), activate("k-2", "kept", "L-k"))
	require.NoError(t, err)
	assert.Equal(t, before.Version+1, res.Version)
	aud, _ := as(t, srv.ClientURL(), asAuditor())
	src, err := audit.NewSource(ctxT(t), aud)
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, res.Position, rep.HeadPosition)
}

// TestOwnerSubjectsAreInternal: a node passes a command to the owner of its account's partition
// on ledger.owner.<partition>.<command>, answered only into the responders' inbox. No client role
// may publish there (it would bypass the public endpoint's reply check), and a request there
// from the ledger identity, whose replies are not the responder's, is ignored: nothing decided.
func TestOwnerSubjectsAreInternal(t *testing.T) {
	t.Parallel()
	srv, acc, admin := attackLedger(t)
	before := streamHeads(t, admin)
	cmd := func(id string) []byte {
		return []byte(`{"command_id":"` + id + `","account_id":"victim","license_id":"L-` + id + `","source":"sales","credits":"5"}`)
	}
	subjects := []string{}
	for p := 0; p < 4; p++ {
		subjects = append(subjects, commandservice.OwnerSubject(p, "purchase_license"))
	}
	for role, o := range map[string]natsconn.Options{"service": asService(acc), "dashboard": asDashboard(), "auditor": asAuditor()} {
		nc, ae := as(t, srv.ClientURL(), o)
		for _, subj := range subjects {
			require.NoError(t, nc.PublishMsg(&nats.Msg{Subject: subj, Reply: nc.NewRespInbox(), Data: cmd(role + subj)}))
			ae.requireViolation(t, "Publish", subj)
		}
	}
	for _, subj := range subjects {
		_, err := admin.Request(subj, cmd("ledger"+subj), refusedWait)
		require.Error(t, err, "the owner answers only another node's forwarder")
	}
	svc, _ := as(t, srv.ClientURL(), asService(acc))
	res, err := client(t, svc).PurchaseLicense(ctxT(t), purchase("o-1", "victim", "L-o", "10"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Version, "no forwarded command was decided before")
	before[jetstore.StreamName]++
	before["KV_"+jetstore.ClaimsBucket]++ // the purchase reserved its license id
	assert.Equal(t, before, streamHeads(t, admin))
}

// TestNodeSubjectsAreInternal: each node answers the other nodes' liveness probes on
// ledger.node.<name>.alive (server.AliveSubject), into the responders' inbox only. No client
// role may subscribe there (it could answer for a dead node and hold the others' takeover back
// after a lease-store gap) or publish there, nor may the ledger identity subscribe; a probe from
// the ledger identity, whose replies are not the responder's, is not answered (it times out:
// the node does listen there, so it is not "no responders" either).
func TestNodeSubjectsAreInternal(t *testing.T) {
	t.Parallel()
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.Auth = acc.Config
	cfg.ServerName = "victim-node"
	cfg.HTTPListen = ""
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	srv := start(t, cfg)
	admin, aae := as(t, srv.ClientURL(), asLedger())
	waitServing(t, admin)
	subj := server.AliveSubject(cfg.ServerName)
	for role, o := range map[string]natsconn.Options{"service": asService(acc), "dashboard": asDashboard(), "auditor": asAuditor()} {
		nc, ae := as(t, srv.ClientURL(), o)
		require.NoError(t, nc.PublishMsg(&nats.Msg{Subject: subj, Reply: nc.NewRespInbox()}), role)
		ae.requireViolation(t, "Publish", subj)
		for _, s := range []string{subj, "ledger.node.>", "ledger.node.*.alive"} {
			_, err := nc.Subscribe(s, func(m *nats.Msg) { _ = m.Respond(nil) })
			require.NoError(t, err, role)
			ae.requireViolation(t, "Subscription", s)
		}
	}
	_, err := admin.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(nil) })
	require.NoError(t, err)
	aae.requireViolation(t, "Subscription", subj)
	_, err = admin.Request(subj, nil, refusedWait)
	assert.ErrorIs(t, err, nats.ErrTimeout, "the node listens, and answers only the responders' inbox")
}
