package productiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/auditread"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/server"
)

// The auditors' stream infos pass through the ledger too (auditread.StartStreamInfo,
// docs/SECURITY.md): a STREAM.INFO with subjects_filter ">" makes the server walk every subject
// of LEDGER, one per account, and the server's queue of info requests, where the ledger's own
// head reads wait, took an auditor's requests as fast as it could send them, and drops them all,
// the ledger's with them, once 10,000 wait.

const streamInfoLEDGER = "$JS.API.STREAM.INFO." + jetstore.StreamName

// TestAuditorStreamInfoFloodSparesTheLedger: auditor connections send 12,000 stream infos with
// subjects_filter ">" (and deleted_details) at once, without waiting for answers, on a LEDGER of
// 2,000 accounts. Before the relay the server worked through them two at a time (its workers on
// two cores), each walking 2,000 subjects: the ledger's head read, queued behind them, was not
// answered within 2 s, and the server dropped its whole queue of info requests ("JetStream API
// info queue limit reached"). Now the ledger refuses them before JetStream sees one.
// Not parallel: it measures a response time.
func TestAuditorStreamInfoFloodSparesTheLedger(t *testing.T) {
	var sink logSink
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.Auth = acc.Config
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	cfg.Log = zerolog.New(&sink).Level(zerolog.WarnLevel)
	srv := start(t, cfg)
	admin, _ := as(t, srv.ClientURL(), asLedger())
	waitServing(t, admin)
	fillAccounts(t, admin, 2000)
	store, err := jetstore.Open(ctxT(t), admin, jetstore.Config{})
	require.NoError(t, err)

	const conns, each = 4, 3000
	for range conns {
		aud, _ := as(t, srv.ClientURL(), asAuditor())
		for range each {
			// No one listens on the reply subject: the server works the answer out all the same.
			require.NoError(t, aud.PublishRequest(streamInfoLEDGER, aud.NewInbox(), []byte(`{"subjects_filter":">","deleted_details":true}`)))
		}
		require.NoError(t, aud.Flush())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	head, err := store.Head(ctx)
	require.NoError(t, err, "the ledger's head read, behind the auditors' stream infos")
	assert.Less(t, time.Since(began), time.Second)
	assert.Equal(t, streamHead(t, admin), head)
	assert.NotContains(t, sink.String(), "queue limit reached", "the server dropped its queue of info requests")
	assert.Positive(t, srv.AuditInfoStats().Refused, "refused by the ledger")
}

// TestAuditorStreamInfoAnswersAsJetStream: a stream info without subjects_filter reaches the
// auditor as JetStream answers it, byte for byte (but its timestamp); one with a filter, however
// written, is refused in JetStream's words where JetStream would have walked the subjects, and
// nowhere else. The audit tool's verification still runs as the auditor.
func TestAuditorStreamInfoAnswersAsJetStream(t *testing.T) {
	t.Parallel()
	srv, admin := auditReadLedger(t, server.AuditReadConfig{}, nil, 3)
	raw := rawAuditor(t, srv.ClientURL())
	ts := regexp.MustCompile(`"ts":"[^"]*"`)
	for _, body := range []string{
		``, `{}`, `{"deleted_details":true}`, `{"offset":0}`, `{"subjects_filter":""}`,
		`{"subjects_filter":">"}`, `{"SUBJECTS_FILTER":">"}`, `{"subjects_filter":""}{"subjects_filter":">"}`,
		`{"subjects_filter":">"}{"subjects_filter":""}`, `{"subjects_filter":">","unknown":1}`, `{"seq":`,
	} {
		js, err := admin.Request(streamInfoLEDGER, []byte(body), waitFor) // JetStream itself
		require.NoError(t, err)
		var asked struct {
			Total int             `json:"total"`
			Error json.RawMessage `json:"error"`
		}
		require.NoError(t, json.Unmarshal(js.Data, &asked), "%q", body)
		hdr, got := raw.info(t, body)
		assert.Empty(t, hdr, "%q: no headers, as JetStream sends none", body)
		lists := auditread.ListsSubjects([]byte(body))
		if asked.Error == nil {
			assert.Equal(t, asked.Total > 0, lists, "%q: refused exactly where JetStream walks the subjects", body)
		}
		if lists {
			assert.Contains(t, got, `"error":{"code":400,"err_code":10003,"description":"bad request: subjects_filter`, "%q", body)
			continue
		}
		assert.Equal(t, ts.ReplaceAllString(string(js.Data), `"ts":""`), ts.ReplaceAllString(got, `"ts":""`), "%q: JetStream's answer", body)
	}

	aud, ae := as(t, srv.ClientURL(), asAuditor())
	js, err := jetstream.New(aud)
	require.NoError(t, err)
	st, err := js.Stream(ctxT(t), jetstore.StreamName)
	require.NoError(t, err)
	_, err = st.Info(ctxT(t), jetstream.WithSubjectFilter(">"))
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr, "nats.go reads the refusal as JetStream's error")
	assert.Equal(t, 400, apiErr.Code)
	assert.EqualValues(t, 10003, apiErr.ErrorCode)
	info, err := st.Info(ctxT(t), jetstream.WithDeletedDetails(true))
	require.NoError(t, err)
	auditReadsWhole(t, aud, info.State.LastSeq)
	assert.Empty(t, ae.all())
	assert.Positive(t, srv.AuditInfoStats().Served, "through the ledger")
}

// info sends a stream info of LEDGER and returns its one answer's header block ("" for none) and
// data.
func (r *rawConn) info(t *testing.T, body string) (string, string) {
	t.Helper()
	r.n++
	_, err := fmt.Fprintf(r.c, "PUB %s _INBOX_auditor.raw.%d %d\r\n%s\r\n", streamInfoLEDGER, r.n, len(body), body)
	require.NoError(t, err)
	_ = r.c.SetReadDeadline(time.Now().Add(waitFor))
	for {
		line, err := r.br.ReadString('\n')
		require.NoError(t, err)
		f := strings.Fields(line)
		switch f[0] {
		case "PING":
			_, _ = fmt.Fprint(r.c, "PONG\r\n")
			continue
		case "INFO":
			continue
		case "MSG", "HMSG":
		default:
			t.Fatalf("unexpected %q", line)
		}
		hlen := 0
		if f[0] == "HMSG" {
			hlen, _ = strconv.Atoi(f[len(f)-2])
		}
		tlen, _ := strconv.Atoi(f[len(f)-1])
		buf := make([]byte, tlen+2)
		_, err = io.ReadFull(r.br, buf)
		require.NoError(t, err)
		return string(buf[:hlen]), string(buf[hlen:tlen])
	}
}

// TestAuditorStreamInfosRunBoundedAtOnce: the node passes at most InfoSlots auditor stream infos
// to JetStream at once; the next wait (up to InfoQueue), one more is answered JetStream's
// "too many requests" at once, and the waiting one is served once a slot frees up.
func TestAuditorStreamInfosRunBoundedAtOnce(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hooks := &server.Hooks{InAuditInfo: func() { <-release }}
	srv, _ := auditReadLedger(t, server.AuditReadConfig{InfoSlots: 1, InfoQueue: 1}, hooks, 1)
	aud, _ := as(t, srv.ClientURL(), asAuditor())
	var wg sync.WaitGroup
	answers := make(chan *nats.Msg, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := aud.Request(streamInfoLEDGER, nil, waitFor)
			assert.NoError(t, err)
			answers <- m
		}()
	}
	require.Eventually(t, func() bool {
		st := srv.AuditInfoStats()
		return st.InFlight == 1 && st.Waiting == 1
	}, waitFor, pollTick, "one in its slot, one waiting: %+v", srv.AuditInfoStats())
	busy, err := aud.Request(streamInfoLEDGER, nil, waitFor)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"io.nats.jetstream.api.v1.stream_info_response","total":0,"offset":0,"limit":0,"error":{"code":429,"err_code":10167,"description":"too many requests"}}`, string(busy.Data))
	close(release)
	wg.Wait()
	close(answers)
	for m := range answers {
		require.NotNil(t, m)
		assert.Contains(t, string(m.Data), `"config":{"name":"LEDGER"`)
	}
	st := srv.AuditInfoStats()
	assert.EqualValues(t, 1, st.Peak, "never more than the slots")
	assert.EqualValues(t, 1, st.Busy)
	assert.EqualValues(t, 2, st.Served)
	assert.Zero(t, srv.AuditReadStats().Served, "the direct gets' relay is another")
	metricValue(t, srv, `creditledger_audit_infos_total{outcome="busy"}`, 1) // what operators see
	metricValue(t, srv, `creditledger_audit_infos_total{outcome="served"}`, 2)
}

// TestAuditToolAsksAgainWhenStreamInfosAreBusy: the audit tools open a stream with a stream
// info; one answered busy (the ledger's slots and queue for them taken) is asked again a little
// later, as their busy direct gets are, and the tool goes on once a slot is free.
func TestAuditToolAsksAgainWhenStreamInfosAreBusy(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	hooks := &server.Hooks{InAuditInfo: func() { <-release }}
	srv, _ := auditReadLedger(t, server.AuditReadConfig{InfoSlots: 1, InfoQueue: 1}, hooks, 1)
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	holder, _ := as(t, srv.ClientURL(), asAuditor())
	for range 2 { // one in the slot, one waiting
		require.NoError(t, holder.PublishRequest(streamInfoLEDGER, holder.NewInbox(), nil))
	}
	require.Eventually(t, func() bool {
		st := srv.AuditInfoStats()
		return st.InFlight == 1 && st.Waiting == 1
	}, waitFor, pollTick)
	aud, _ := as(t, srv.ClientURL(), asAuditor())
	opened := make(chan error, 1)
	go func() {
		_, err := audit.NewSource(ctxT(t), aud)
		opened <- err
	}()
	require.Eventually(t, func() bool { return srv.AuditInfoStats().Busy > 0 }, waitFor, pollTick, "answered busy")
	once.Do(func() { close(release) })
	require.NoError(t, <-opened, "asked again once a slot was free")
}

// fillAccounts appends one sealed LicensePurchased for each of n fresh accounts straight into the
// store, in atomic batches: a LEDGER with n account subjects in about a second per 10,000.
func fillAccounts(t *testing.T, nc *nats.Conn, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	at := testledger.Epoch
	for from := 0; from < n; from += jetstore.MaxBatch {
		recs := make([]ledger.Record, 0, jetstore.MaxBatch)
		for i := from; i < min(n, from+jetstore.MaxBatch); i++ {
			acct := fmt.Sprintf("fill-%07d", i)
			p, err := events.EncodePayload(events.LicensePurchased{LicenseID: "L-" + acct, Source: "sales", Credits: decimal.NewFromInt(10),
				TermMonths: 12, AutoRenew: true, ContractStart: at, PurchasedAt: at, ExpiresAt: at.AddDate(1, 0, 0)})
			require.NoError(t, err)
			e := events.Envelope{EventID: "ev-" + acct, Type: events.TypeLicensePurchased, SchemaVersion: 1, AccountID: acct,
				Version: 1, OccurredAt: at, CommandID: "cmd-" + acct, CorrelationID: "cmd-" + acct, Payload: p}
			data, err := e.SealEncode()
			require.NoError(t, err)
			recs = append(recs, ledger.Record{AccountID: acct, Data: data, Version: 1})
		}
		_, err := store.Append(ctx, recs)
		require.NoError(t, err)
	}
}

// logSink is a log the embedded server's goroutines may write to concurrently.
type logSink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logSink) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logSink) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
