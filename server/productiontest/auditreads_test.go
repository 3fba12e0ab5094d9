package productiontest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// The auditors' direct gets pass through the ledger, which bounds them (auditread,
// docs/SECURITY.md): nats-server queues the whole range a direct get asks for at once, so one
// request with a huge batch and max_bytes held the whole stream in the node's memory.

// auditReadLedger is a secured ledger with the given bounds on the auditors' direct gets and n
// events in LEDGER after its ownership records.
func auditReadLedger(t *testing.T, reads server.AuditReadConfig, hooks *server.Hooks, n int) (*server.Server, *nats.Conn) {
	t.Helper()
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.Auth = acc.Config
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	cfg.AuditReads, cfg.Hooks = reads, hooks
	srv := start(t, cfg)
	admin, _ := as(t, srv.ClientURL(), asLedger())
	waitServing(t, admin)
	cl := client(t, admin)
	for i := range n {
		_, err := cl.PurchaseLicense(ctxT(t), purchase(fmt.Sprintf("ar-%d", i), fmt.Sprintf("acct-ar-%d", i), fmt.Sprintf("L-ar-%d", i), "10"))
		require.NoError(t, err)
	}
	return srv, admin
}

// batchAnswer is what one direct get brought: its messages, their bytes (subject, headers as
// received, data: what the server counts against max_bytes, near enough) and its final status.
type batchAnswer struct {
	msgs, bytes, largest int
	status, desc         string
	pending              uint64
}

// directBatch sends one direct get on nc and reads its answers up to the first status.
func directBatch(t *testing.T, nc *nats.Conn, subject, body string) batchAnswer {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, nc.PublishRequest(subject, inbox, []byte(body)))
	var a batchAnswer
	for {
		m, err := sub.NextMsg(waitFor)
		require.NoError(t, err, "after %d messages", a.msgs)
		if st := m.Header.Get("Status"); st != "" {
			a.status, a.desc = st, m.Header.Get("Description")
			a.pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return a
		}
		size := len(m.Header.Get(jetstream.SubjectHeader)) + len(m.Data)
		a.msgs, a.bytes, a.largest = a.msgs+1, a.bytes+size, max(a.largest, size)
	}
}

// TestAuditorDirectGetIsBounded: an auditor asks for a billion messages and a terabyte; it gets
// at most the ledger's batch cap, or its byte cap and one message, then the end-of-batch marker
// with the count still pending, and reads on from there. Without the relay the server sent the
// whole stream.
func TestAuditorDirectGetIsBounded(t *testing.T) {
	t.Parallel()
	const events = 60
	huge := `{"seq":1,"batch":1000000000,"max_bytes":1000000000000}`
	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		srv, admin := auditReadLedger(t, server.AuditReadConfig{MaxBatch: 20}, nil, events)
		total := streamHead(t, admin)
		aud, ae := as(t, srv.ClientURL(), asAuditor())
		a := directBatch(t, aud, "$JS.API.DIRECT.GET."+jetstore.StreamName, huge)
		assert.Equal(t, "204", a.status, "end of batch")
		assert.Equal(t, 20, a.msgs, "the batch cap, not the billion asked for")
		assert.Equal(t, total-20, a.pending, "the marker says what is left")
		// From where it stopped, the rest, batch by batch.
		read := a.msgs
		for seq := uint64(21); a.pending > 0; seq += uint64(a.msgs) {
			a = directBatch(t, aud, "$JS.API.DIRECT.GET."+jetstore.StreamName, fmt.Sprintf(`{"seq":%d,"batch":1000000000}`, seq))
			require.Equal(t, "204", a.status)
			require.LessOrEqual(t, a.msgs, 20)
			read += a.msgs
		}
		assert.Equal(t, int(total), read)
		assert.Empty(t, ae.all())
		auditReadsWhole(t, aud, total)
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		const maxBytes = 4 << 10
		srv, admin := auditReadLedger(t, server.AuditReadConfig{MaxBytes: maxBytes}, nil, events)
		total := streamHead(t, admin)
		aud, _ := as(t, srv.ClientURL(), asAuditor())
		a := directBatch(t, aud, "$JS.API.DIRECT.GET."+jetstore.StreamName, huge)
		assert.Equal(t, "204", a.status, "end of batch")
		assert.Less(t, a.msgs, int(total))
		assert.LessOrEqual(t, a.bytes, maxBytes+a.largest, "the byte cap and one message at most")
		assert.Equal(t, total-uint64(a.msgs), a.pending)
		// max_bytes 0 is the cap too, not the server's 64 MiB.
		b := directBatch(t, aud, "$JS.API.DIRECT.GET."+jetstore.StreamName, `{"seq":1,"batch":1000}`)
		assert.Equal(t, a.msgs, b.msgs)
		auditReadsWhole(t, aud, total)
	})
}

// auditReadsWhole: the audit tool's verification, as `creditledger audit verify` runs it, reads
// the whole stream through batches the ledger cut short.
func auditReadsWhole(t *testing.T, aud *nats.Conn, head uint64) {
	t.Helper()
	src, err := audit.NewSource(ctxT(t), aud)
	require.NoError(t, err)
	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK, "%v", rep.Findings)
	assert.Equal(t, head, rep.HeadPosition)
}

// TestAuditorReadsRunBoundedAtOnce: the node runs at most Slots auditor reads at once; the next
// ones wait for a slot (up to Queue of them), one more is answered 429 at once, and every
// waiting one is served once the slots free up.
func TestAuditorReadsRunBoundedAtOnce(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hooks := &server.Hooks{InAuditRead: func() { <-release }}
	srv, _ := auditReadLedger(t, server.AuditReadConfig{Slots: 2, Queue: 3}, hooks, 3)
	aud, _ := as(t, srv.ClientURL(), asAuditor())
	var wg sync.WaitGroup
	answers := make(chan batchAnswer, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- directBatch(t, aud, "$JS.API.DIRECT.GET."+jetstore.StreamName, `{"seq":1,"batch":100}`)
		}()
	}
	require.Eventually(t, func() bool {
		st := srv.AuditReadStats()
		return st.InFlight == 2 && st.Waiting == 3
	}, waitFor, pollTick, "two reads in their slots, three waiting: %+v", srv.AuditReadStats())
	busy := directBatch(t, aud, "$JS.API.DIRECT.GET."+jetstore.StreamName, `{"seq":1,"batch":100}`)
	assert.Equal(t, "429", busy.status, "no room to wait: answered busy at once")
	close(release)
	wg.Wait()
	close(answers)
	for a := range answers {
		assert.Equal(t, "204", a.status)
		assert.Positive(t, a.msgs)
	}
	st := srv.AuditReadStats()
	assert.EqualValues(t, 2, st.Peak, "never more than the slots")
	assert.EqualValues(t, 1, st.Busy)
	assert.EqualValues(t, 5, st.Served)
	metricValue(t, srv, `creditledger_audit_reads_total{outcome="busy"}`, 1) // what operators see
	metricValue(t, srv, `creditledger_audit_reads_total{outcome="served"}`, 5)
}

// TestAuditorDirectGetAnswersAsJetStream: what the auditor receives through the ledger is what
// JetStream sends, byte for byte where it matters: status lines (end of batch, not found) and
// the relay's own refusals in JetStream's words; a single get and the last message on a subject
// still work; a malformed body is refused and the relay goes on.
func TestAuditorDirectGetAnswersAsJetStream(t *testing.T) {
	t.Parallel()
	srv, admin := auditReadLedger(t, server.AuditReadConfig{}, nil, 3)
	head := streamHead(t, admin)
	raw := rawAuditor(t, srv.ClientURL())
	direct := "$JS.API.DIRECT.GET." + jetstore.StreamName
	first := raw.request(t, direct, `{"seq":1,"batch":2}`, true)
	require.Len(t, first, 3)
	assert.True(t, strings.HasPrefix(first[0], "NATS/1.0\r\n"), first[0])
	for _, h := range []string{"Nats-Stream: LEDGER", "Nats-Sequence: 1", "Nats-Subject: ", "Nats-Time-Stamp: ", "Nats-Num-Pending: ", "Nats-Last-Sequence: 0"} {
		assert.Contains(t, first[0], "\r\n"+h, "a batch's message headers")
	}
	assert.True(t, strings.HasPrefix(first[2], "NATS/1.0 204 EOB\r\n"), "a status line, as JetStream writes it: %q", first[2])
	assert.Contains(t, first[2], fmt.Sprintf("Nats-Num-Pending: %d\r\n", head-2))
	assert.Contains(t, first[2], "Nats-Last-Sequence: 2\r\n")
	for body, want := range map[string]string{
		fmt.Sprintf(`{"seq":%d}`, head+100): "NATS/1.0 404 Message Not Found\r\n",
		`{"seq":`:                           "NATS/1.0 408 Malformed Request\r\n",
		``:                                  "NATS/1.0 408 Empty Request\r\n",
		`{"seq":1,"batch":-1}`:              "NATS/1.0 408 Bad Request\r\n",
		`{"seq":1,"last_by_subj":"x"}`:      "NATS/1.0 408 Bad Request\r\n", // JetStream's own refusal
	} {
		got := raw.request(t, direct, body, false)
		require.Len(t, got, 1, body)
		assert.True(t, strings.HasPrefix(got[0], want), "%s: %q", body, got[0])
	}
	// Single gets and the last message on a subject, as jetstream.Stream does them.
	aud, ae := as(t, srv.ClientURL(), asAuditor())
	js, err := jetstream.New(aud)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	m, err := st.GetMsg(ctxT(t), head)
	require.NoError(t, err)
	last, err := st.GetLastMsgForSubject(ctxT(t), m.Subject)
	require.NoError(t, err)
	assert.Equal(t, head, last.Sequence)
	_, err = st.GetLastMsgForSubject(ctxT(t), jetstore.DefaultSubjects.Of("nobody"))
	assert.ErrorIs(t, err, jetstream.ErrMsgNotFound)
	assert.Empty(t, ae.all())
	assert.Positive(t, srv.AuditReadStats().Served, "through the ledger")
	assert.EqualValues(t, 3, srv.AuditReadStats().Refused)
}

// TestAuditReadSubjectIsTheLedgers: no role but the ledger may publish or subscribe to the
// subjects the auditors' direct gets and stream infos arrive on (a publisher there would choose
// the reply subject the ledger's answers go to), and the auditor no longer reaches the JetStream
// API's direct gets or stream infos: its requests are the ledger's to bound.
func TestAuditReadSubjectIsTheLedgers(t *testing.T) {
	t.Parallel()
	srv, acc, _ := attackLedger(t)
	for _, subject := range []string{authz.AuditReadSubject(jetstore.StreamName), authz.AuditInfoSubject(jetstore.StreamName)} {
		for name, o := range map[string]func() (*nats.Conn, *asyncErrors){
			"service":   func() (*nats.Conn, *asyncErrors) { return as(t, srv.ClientURL(), asService(acc)) },
			"dashboard": func() (*nats.Conn, *asyncErrors) { return as(t, srv.ClientURL(), asDashboard()) },
			"auditor":   func() (*nats.Conn, *asyncErrors) { return as(t, srv.ClientURL(), asAuditor()) },
			"ledger":    func() (*nats.Conn, *asyncErrors) { return as(t, srv.ClientURL(), asLedger()) },
		} {
			nc, ae := o()
			require.NoError(t, nc.PublishRequest(subject, nc.NewInbox(), []byte(`{"seq":1,"batch":1000000000}`)), name)
			ae.requireViolation(t, "Publish", subject)
			if name != "ledger" { // the ledger's own relay subscribes there
				_, err := nc.SubscribeSync(subject)
				require.NoError(t, err)
				ae.requireViolation(t, "Subscription", subject)
			}
			nc.Close() // the auditors' account takes 16 connections
		}
	}
	// An auditor's direct get is served by the ledger's relay, not the JetStream API.
	before := srv.AuditReadStats().Served
	aud, _ := as(t, srv.ClientURL(), asAuditor())
	_, err := aud.Request("$JS.API.DIRECT.GET."+jetstore.StreamName, []byte(`{"seq":1}`), waitFor)
	require.NoError(t, err)
	// Counted once the relay has passed the answer on, so a moment after the auditor has it.
	assert.Eventually(t, func() bool { return srv.AuditReadStats().Served == before+1 }, waitFor, pollTick)
	infos := srv.AuditInfoStats().Served
	_, err = aud.Request("$JS.API.STREAM.INFO."+jetstore.StreamName, nil, waitFor)
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return srv.AuditInfoStats().Served == infos+1 }, waitFor, pollTick)
}

// rawConn is an auditor connection spoken in the client protocol itself, to see header blocks
// as they arrive (nats.go folds a status line into header fields).
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
	n  int
}

func rawAuditor(t *testing.T, clientURL string) *rawConn {
	t.Helper()
	u, err := url.Parse(clientURL)
	require.NoError(t, err)
	c, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	r := &rawConn{c: c, br: bufio.NewReader(c)}
	_, err = r.br.ReadString('\n') // INFO
	require.NoError(t, err)
	doc, _ := json.Marshal(map[string]any{"user": "auditor", "pass": auditorPassword, "headers": true, "verbose": false, "protocol": 1})
	_, err = fmt.Fprintf(c, "CONNECT %s\r\nSUB _INBOX_auditor.raw.> 1\r\nPING\r\n", doc)
	require.NoError(t, err)
	for {
		line, err := r.br.ReadString('\n')
		require.NoError(t, err)
		if line == "PONG\r\n" {
			return r
		}
		require.True(t, strings.HasPrefix(line, "INFO "), "%q", line) // the server's connect_info
	}
}

// request publishes body to subject and returns the header blocks of the answers: up to the
// first status line for a batch, the one answer otherwise.
func (r *rawConn) request(t *testing.T, subject, body string, batch bool) []string {
	t.Helper()
	r.n++
	_, err := fmt.Fprintf(r.c, "PUB %s _INBOX_auditor.raw.%d %d\r\n%s\r\n", subject, r.n, len(body), body)
	require.NoError(t, err)
	var out []string
	_ = r.c.SetReadDeadline(time.Now().Add(waitFor))
	for {
		line, err := r.br.ReadString('\n')
		require.NoError(t, err, "after %d answers", len(out))
		f := strings.Fields(line)
		switch {
		case f[0] == "PING":
			_, _ = fmt.Fprint(r.c, "PONG\r\n")
			continue
		case f[0] == "INFO":
			continue
		case f[0] != "HMSG":
			t.Fatalf("unexpected %q", line)
		}
		hlen, _ := strconv.Atoi(f[len(f)-2])
		tlen, _ := strconv.Atoi(f[len(f)-1])
		buf := make([]byte, tlen+2)
		_, err = io.ReadFull(r.br, buf)
		require.NoError(t, err)
		hdr := string(buf[:hlen])
		out = append(out, hdr)
		if !batch || !strings.HasPrefix(hdr, "NATS/1.0\r\n") {
			return out
		}
	}
}

// TestAuditorDirectGetLimits: the forms of a direct get whose answer or request the server does
// not bound itself. multi_last without a batch is answered with up to 1,024 messages, past the
// ledger's batch cap (and past what the relay copied: the auditor never saw the end-of-batch
// marker); the last message on a subject as long as the auditor's protocol line allows became,
// with the relay's longer reply subject, a line past the server's max_control_line, and the
// server cut the relay's connection: every auditor's reads failed for one auditor's request.
func TestAuditorDirectGetLimits(t *testing.T) {
	t.Parallel()
	srv, _ := auditReadLedger(t, server.AuditReadConfig{MaxBatch: 3}, nil, 8)
	direct := "$JS.API.DIRECT.GET." + jetstore.StreamName
	aud, ae := as(t, srv.ClientURL(), asAuditor())
	a := directBatch(t, aud, direct, `{"multi_last":["ledger.events.>"]}`)
	assert.Equal(t, "204", a.status, "end of batch")
	assert.Equal(t, 3, a.msgs, "the batch cap, not the 1,024 multi_last allows")
	assert.Positive(t, a.pending)

	raw := rawAuditor(t, srv.ClientURL())
	reply := fmt.Sprintf(" _INBOX_auditor.raw.%d 0", raw.n+1)
	long := direct + "." + strings.Repeat("a", 4096-len(direct)-1-len(reply)) // the longest line the server takes
	got := raw.request(t, long, "", false)
	require.Len(t, got, 1)
	assert.True(t, strings.HasPrefix(got[0], "NATS/1.0 408 Bad Request\r\n"), "%q", got[0])
	// The relay's connection is still there: the next read is served at once.
	_, err := aud.Request(direct, []byte(`{"seq":1}`), waitFor)
	require.NoError(t, err)
	assert.Empty(t, ae.all())
}

// The auditors' account takes at most authz.AuditorMaxConnections connections, all auditors
// together: one more is refused, so auditors that never read their answers cannot make the
// server hold a connection's pending answers times any number of connections.
func TestAuditorConnectionsAreBounded(t *testing.T) {
	t.Parallel()
	srv, _ := auditReadLedger(t, server.AuditReadConfig{}, nil, 0)
	opts, err := asAuditor().NATSOptions()
	require.NoError(t, err)
	for i := 0; i < authz.AuditorMaxConnections; i++ {
		nc, err := nats.Connect(srv.ClientURL(), append(opts, nats.NoReconnect())...)
		require.NoError(t, err, "auditor connection %d", i+1)
		t.Cleanup(nc.Close)
	}
	nc, err := nats.Connect(srv.ClientURL(), append(opts, nats.NoReconnect())...)
	if err == nil {
		// The server may take the connection and close it at once: it must not stay open.
		defer nc.Close()
		require.Eventually(t, func() bool { return nc.IsClosed() }, waitFor, pollTick, "one auditor connection over the bound stays open")
		return
	}
	assert.Contains(t, err.Error(), "maximum account active connections exceeded")
}
