package microsvc_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/microsvc"
)

const wait = 5 * time.Second

// connect starts an embedded nats-server (random port, shut down and waited for at cleanup)
// and returns two connections to it: the service's and a client's.
func connect(t *testing.T) (svcNC, nc *nats.Conn) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	for _, c := range []**nats.Conn{&svcNC, &nc} {
		*c, err = nats.Connect(ns.ClientURL())
		require.NoError(t, err)
		t.Cleanup((*c).Close)
	}
	return svcNC, nc
}

func addService(t *testing.T, nc *nats.Conn, cfg microsvc.Config) *microsvc.Service {
	t.Helper()
	svc, err := microsvc.Add(nc, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}

func request(t *testing.T, nc *nats.Conn, subject, body string) *nats.Msg {
	t.Helper()
	msg, err := nc.Request(subject, []byte(body), wait)
	require.NoError(t, err, subject)
	return msg
}

func stats(t *testing.T, nc *nats.Conn, subject string) map[string]*micro.EndpointStats {
	t.Helper()
	var st micro.Stats
	require.NoError(t, json.Unmarshal(request(t, nc, subject, "").Data, &st))
	assert.Equal(t, micro.StatsResponseType, st.Type)
	out := map[string]*micro.EndpointStats{}
	for _, e := range st.Endpoints {
		out[e.Name] = e
	}
	return out
}

// parking is a handler that answers nothing until `want` requests have arrived, then answers
// them all from another goroutine: "ok" with a reply, "reject" with an error, "invalid" on the
// handler's own goroutine at once. A service that waited for each answer before taking the next
// request would never get there.
type parking struct {
	mu     sync.Mutex
	want   int
	parked []micro.Request
}

func (p *parking) Handle(req micro.Request) {
	if string(req.Data()) == "invalid" {
		_ = req.Error("invalid_argument", "body is invalid", []byte(`{"ok":false}`))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parked = append(p.parked, req)
	if len(p.parked) < p.want {
		return
	}
	parked := p.parked
	p.parked = nil
	go func() {
		for _, r := range parked {
			if string(r.Data()) == "reject" {
				_ = r.Error("insufficient_credits", "requested 5, 1 available", []byte(`{"ok":false}`),
					micro.WithHeaders(micro.Headers{"Ledger-Replayed": {"true"}}))
			} else {
				_ = r.Respond([]byte(`{"ok":true}`))
			}
		}
	}()
}

// TestStatsCountAnswersSentLater: answers sent after the handler returned, from another
// goroutine, count in num_requests and num_errors with last_error "code:description", and the
// endpoint takes new requests while earlier ones wait for their answers.
func TestStatsCountAnswersSentLater(t *testing.T) {
	t.Parallel()
	svcNC, nc := connect(t)
	const accepted, rejected, invalid = 5, 3, 2
	h := &parking{want: accepted + rejected}
	svc := addService(t, svcNC, microsvc.Config{Name: "ledgertest", Version: "1.0.0"})
	require.NoError(t, svc.AddGroup("test").AddEndpoint("cmd", h))
	require.NoError(t, svcNC.Flush())

	for i := 0; i < invalid; i++ {
		msg := request(t, nc, "test.cmd", "invalid")
		assert.Equal(t, "invalid_argument", msg.Header.Get(micro.ErrorCodeHeader))
	}
	var wg sync.WaitGroup
	replies := make(chan *nats.Msg, accepted+rejected)
	for i := 0; i < accepted+rejected; i++ {
		body := "ok"
		if i < rejected {
			body = "reject"
		}
		wg.Go(func() {
			msg, err := nc.Request("test.cmd", []byte(body), wait)
			if assert.NoError(t, err) {
				replies <- msg
			}
		})
	}
	wg.Wait()
	close(replies)
	codes := map[string]int{}
	for msg := range replies {
		codes[msg.Header.Get(micro.ErrorCodeHeader)]++
		if msg.Header.Get(micro.ErrorCodeHeader) != "" {
			assert.Equal(t, "requested 5, 1 available", msg.Header.Get(micro.ErrorHeader))
			assert.Equal(t, "true", msg.Header.Get("Ledger-Replayed"))
			assert.JSONEq(t, `{"ok":false}`, string(msg.Data))
		}
	}
	assert.Equal(t, map[string]int{"": accepted, "insufficient_credits": rejected}, codes)

	e := stats(t, nc, "$SRV.STATS.ledgertest")["cmd"]
	require.NotNil(t, e)
	assert.Equal(t, "test.cmd", e.Subject)
	assert.Equal(t, micro.DefaultQueueGroup, e.QueueGroup)
	assert.Equal(t, accepted+rejected+invalid, e.NumRequests)
	assert.Equal(t, rejected+invalid, e.NumErrors)
	assert.Equal(t, "insufficient_credits:requested 5, 1 available", e.LastError)
	assert.Positive(t, e.ProcessingTime)
	assert.Positive(t, e.AverageProcessingTime)
	assert.LessOrEqual(t, e.AverageProcessingTime, e.ProcessingTime)
}

// TestAnsweredOnce: a second answer is refused and not counted; an error answer needs a code and
// a description.
func TestAnsweredOnce(t *testing.T) {
	t.Parallel()
	svcNC, nc := connect(t)
	svc := addService(t, svcNC, microsvc.Config{Name: "once", Version: "1.0.0"})
	second := make(chan [3]error, 1)
	require.NoError(t, svc.AddEndpoint("once", micro.HandlerFunc(func(req micro.Request) {
		noCode := req.Error("", "x", nil)
		first := req.Respond([]byte("first"))
		second <- [3]error{noCode, first, req.Error("late", "too late", nil)}
	})))
	require.NoError(t, svcNC.Flush())
	assert.Equal(t, "first", string(request(t, nc, "once", "").Data))
	errs := <-second
	assert.ErrorIs(t, errs[0], micro.ErrArgRequired)
	assert.NoError(t, errs[1])
	assert.ErrorIs(t, errs[2], microsvc.ErrAnswered)
	e := stats(t, nc, "$SRV.STATS.once")["once"]
	assert.Equal(t, 1, e.NumRequests)
	assert.Equal(t, 0, e.NumErrors)
}

// TestConfigValidation: what micro refuses is refused, wrapping micro.ErrConfigValidation.
func TestConfigValidation(t *testing.T) {
	t.Parallel()
	svcNC, _ := connect(t)
	for _, cfg := range []microsvc.Config{
		{Name: "has space", Version: "1.0.0"},
		{Name: "", Version: "1.0.0"},
		{Name: "ok", Version: "v1.0"},
	} {
		_, err := microsvc.Add(svcNC, cfg)
		assert.ErrorIs(t, err, micro.ErrConfigValidation, "%+v", cfg)
	}
	svc := addService(t, svcNC, microsvc.Config{Name: "ok", Version: "1.0.0"})
	h := micro.HandlerFunc(func(micro.Request) {})
	assert.ErrorIs(t, svc.AddEndpoint("a.b", h), micro.ErrConfigValidation)
	assert.ErrorIs(t, svc.AddEndpoint("a", nil), micro.ErrConfigValidation)
	require.NoError(t, svc.Stop())
	assert.ErrorIs(t, svc.AddEndpoint("a", h), microsvc.ErrStopped)
}

// TestStopDrains: after Stop the endpoints and the $SRV subjects answer no more.
func TestStopDrains(t *testing.T) {
	t.Parallel()
	svcNC, nc := connect(t)
	svc := addService(t, svcNC, microsvc.Config{Name: "stops", Version: "1.0.0"})
	require.NoError(t, svc.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(r.Data()) })))
	require.NoError(t, svcNC.Flush())
	assert.Equal(t, "hi", string(request(t, nc, "echo", "hi").Data))
	require.NoError(t, svc.Stop())
	require.NoError(t, svc.Stop(), "a second Stop is a no-op")
	require.Eventually(t, func() bool {
		_, err1 := nc.Request("echo", nil, 200*time.Millisecond)
		_, err2 := nc.Request("$SRV.PING.stops", nil, 200*time.Millisecond)
		return err1 != nil && err2 != nil
	}, wait, 10*time.Millisecond)
}

// TestSameAnswersAsMicro: beside a nats.go micro service configured alike, ours answers PING,
// INFO and STATS on every subject form with the same JSON fields and types, and discovery
// ($SRV.PING with several replies) finds both.
func TestSameAnswersAsMicro(t *testing.T) {
	t.Parallel()
	svcNC, nc := connect(t)
	md := map[string]string{"description": "does things"}
	ours := addService(t, svcNC, microsvc.Config{Name: "twin", Version: "1.2.3", Description: "a twin",
		StatsHandler: func(e micro.EndpointInfo) any { return map[string]string{"subject": e.Subject} }})
	require.NoError(t, ours.AddGroup("g").AddEndpoint("ep", micro.HandlerFunc(func(r micro.Request) {}),
		microsvc.WithEndpointMetadata(md)))
	require.NoError(t, ours.AddGroup("g").AddEndpoint("bare", micro.HandlerFunc(func(r micro.Request) {})))
	theirs, err := micro.AddService(svcNC, micro.Config{Name: "twin", Version: "1.2.3", Description: "a twin",
		StatsHandler: func(e *micro.Endpoint) any { return map[string]string{"subject": e.Subject} }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = theirs.Stop() })
	require.NoError(t, theirs.AddGroup("g").AddEndpoint("ep", micro.HandlerFunc(func(r micro.Request) {}),
		micro.WithEndpointMetadata(md)))
	require.NoError(t, theirs.AddGroup("g").AddEndpoint("bare", micro.HandlerFunc(func(r micro.Request) {})))
	require.NoError(t, svcNC.Flush())
	theirID := theirs.Info().ID

	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		byID := discover(t, nc, verb)
		require.Contains(t, byID, ours.ID(), verb)
		require.Contains(t, byID, theirID, verb)
		assert.Equal(t, shape(byID[theirID]), shape(byID[ours.ID()]), "%s: the same fields as micro's", verb)
		byName, _ := micro.ControlSubject(verb, "twin", "")
		instance, _ := micro.ControlSubject(verb, "twin", ours.ID())
		assert.Contains(t, discoverOn(t, nc, byName), ours.ID(), byName)
		assert.Equal(t, byID[ours.ID()]["id"], decode(t, request(t, nc, instance, "").Data)["id"], instance)
	}

	var ping micro.Ping
	var info micro.Info
	pingSubj, _ := micro.ControlSubject(micro.PingVerb, "twin", ours.ID())
	infoSubj, _ := micro.ControlSubject(micro.InfoVerb, "twin", ours.ID())
	require.NoError(t, json.Unmarshal(request(t, nc, pingSubj, "").Data, &ping))
	require.NoError(t, json.Unmarshal(request(t, nc, infoSubj, "").Data, &info))
	assert.Equal(t, micro.Ping{ServiceIdentity: micro.ServiceIdentity{Name: "twin", ID: ours.ID(), Version: "1.2.3",
		Metadata: map[string]string{}}, Type: micro.PingResponseType}, ping)
	theirInfo := theirs.Info()
	theirInfo.ID = ours.ID()
	assert.Equal(t, theirInfo, info, "INFO as micro reports it")
	st := stats(t, nc, "$SRV.STATS.twin."+ours.ID())
	assert.JSONEq(t, `{"subject":"g.ep"}`, string(st["ep"].Data))
}

// discover asks every service for verb and collects the answers by service id.
func discover(t *testing.T, nc *nats.Conn, verb micro.Verb) map[string]map[string]any {
	t.Helper()
	subj, err := micro.ControlSubject(verb, "", "")
	require.NoError(t, err)
	return discoverOn(t, nc, subj)
}

func discoverOn(t *testing.T, nc *nats.Conn, subject string) map[string]map[string]any {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, nc.PublishRequest(subject, inbox, nil))
	out := map[string]map[string]any{}
	for len(out) < 2 {
		msg, err := sub.NextMsg(wait)
		require.NoError(t, err, "%s: answers so far %v", subject, out)
		m := decode(t, msg.Data)
		out[fmt.Sprint(m["id"])] = m
	}
	return out
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// shape lists the paths of a JSON value's fields with their JSON types (arrays by element).
func shape(v any) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			out = append(out, path+":object")
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			out = append(out, path+":array")
			for _, e := range x {
				walk(path+"[]", e)
			}
		default:
			out = append(out, fmt.Sprintf("%s:%T", path, v))
		}
	}
	walk("", v)
	sort.Strings(out)
	return compact(out)
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestAnswerNotSent: an answer that cannot be sent (a publish without a reply subject) counts as
// one error, as micro counts it, also when it was an error answer already.
func TestAnswerNotSent(t *testing.T) {
	t.Parallel()
	svcNC, nc := connect(t)
	svc := addService(t, svcNC, microsvc.Config{Name: "nosend", Version: "1.0.0"})
	sent := make(chan error, 2)
	require.NoError(t, svc.AddEndpoint("e", micro.HandlerFunc(func(req micro.Request) {
		if string(req.Data()) == "error" {
			sent <- req.Error("bad", "bad request", nil)
			return
		}
		sent <- req.Respond([]byte("ok"))
	})))
	require.NoError(t, svcNC.Flush())
	for _, body := range []string{"ok", "error"} {
		require.NoError(t, nc.Publish("e", []byte(body)))
		assert.ErrorIs(t, <-sent, micro.ErrRespond)
	}
	e := stats(t, nc, "$SRV.STATS.nosend")["e"]
	assert.Equal(t, 2, e.NumRequests)
	assert.Equal(t, 2, e.NumErrors)
	assert.Contains(t, e.LastError, micro.ErrRespond.Error())
}
