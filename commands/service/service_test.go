package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/service"
	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/internal/microsvc"
	"github.com/creditledger/creditledger/ledger"
)

// fakeWriter answers from another goroutine, as the writer does: allocations are accepted,
// releases rejected (insufficient_allocation), and command ids starting with "again" replayed.
type fakeWriter struct{}

func (fakeWriter) Submit(r submit.Request) error {
	go func() {
		res := submit.Result{AccountID: r.AccountID, Replayed: strings.HasPrefix(r.CommandID, "again")}
		switch r.Command.(type) {
		case ledger.ReleaseCredits:
			res.Err = &ledger.Error{Code: ledger.CodeInsufficientAllocation, Message: "release 5 of 0 allocated",
				Data: map[string]string{"allocated": "0", "requested": "5"}}
		default:
			res.Version, res.Position = 1, 1
			res.Events = []submit.EventRef{{Type: "CreditsAllocated", Version: 1, Position: 1}}
		}
		r.Reply(res)
	}()
	return nil
}

// countingObserver counts the commands the service reports.
type countingObserver struct {
	mu    sync.Mutex
	codes map[string]int
}

func (o *countingObserver) ObserveCommand(_, code string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.codes[code]++
}

// syncBuffer is a log sink safe for the writer's and the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startService runs the command service on an embedded nats-server and returns a client
// connection.
func startService(t *testing.T, level zerolog.Level, obs commands.Observer) (*nats.Conn, *syncBuffer) {
	t.Helper()
	return startServiceWith(t, fakeWriter{}, level, obs)
}

func startServiceWith(t *testing.T, w service.Submitter, level zerolog.Level, obs commands.Observer) (*nats.Conn, *syncBuffer) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	svcNC, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(svcNC.Close)
	logs := &syncBuffer{}
	var opts []commands.Option
	if obs != nil {
		opts = append(opts, commands.WithObserver(obs))
	}
	cmds, err := service.New(w, zerolog.New(logs).Level(level), opts...)
	require.NoError(t, err)
	svc, err := microsvc.Add(svcNC, microsvc.Config{Name: commands.ServiceName, Version: "1.2.3", StatsHandler: cmds.EndpointStats})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, cmds.Register(svc))
	require.NoError(t, svcNC.Flush())
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc, logs
}

func send(t *testing.T, nc *nats.Conn, name, body string) *nats.Msg {
	t.Helper()
	msg, err := nc.Request(commands.Subject(name), []byte(body), 5*time.Second)
	require.NoError(t, err)
	return msg
}

func body(name, id string) string {
	return fmt.Sprintf(`{"command_id":%q,"account_id":"acme","feature":"file_security","credits":"5"}`, id)
}

// TestNoPerCommandLogLinesAtInfo: at info (serve's and bench's level) answering commands writes
// nothing per command; metrics count them. At debug there is one line per command.
func TestNoPerCommandLogLinesAtInfo(t *testing.T) {
	t.Parallel()
	const n = 60
	for _, c := range []struct {
		level zerolog.Level
		lines int
	}{{zerolog.InfoLevel, 0}, {zerolog.DebugLevel, n}} {
		t.Run(c.level.String(), func(t *testing.T) {
			t.Parallel()
			obs := &countingObserver{codes: map[string]int{}}
			nc, logs := startService(t, c.level, obs)
			for i := 0; i < n; i++ {
				switch i % 3 {
				case 0:
					send(t, nc, "allocate_credits", body("allocate_credits", fmt.Sprint("c", i)))
				case 1:
					send(t, nc, "release_credits", body("release_credits", fmt.Sprint("c", i)))
				default:
					send(t, nc, "allocate_credits", `{"command_id":"","account_id":"acme"}`) // invalid_argument
				}
			}
			// The service counts and logs a command just after sending its answer: wait for the last.
			total := func() int {
				obs.mu.Lock()
				defer obs.mu.Unlock()
				sum := 0
				for _, v := range obs.codes {
					sum += v
				}
				return sum
			}
			require.Eventually(t, func() bool {
				return total() == n && strings.Count(logs.String(), `"message":"command"`) == c.lines
			}, 5*time.Second, time.Millisecond, "%s", logs.String())
			obs.mu.Lock()
			defer obs.mu.Unlock()
			assert.Equal(t, map[string]int{"ok": n / 3, "insufficient_allocation": n / 3, "invalid_argument": n / 3}, obs.codes)
		})
	}
}

// TestRejectionsOnTheWire: the body and the micro headers keep their shape, a replay carries
// Ledger-Replayed, and $SRV.STATS counts rejections in num_errors, the handler's own and the
// writer's; the endpoint's data also counts the writer's by code.
func TestRejectionsOnTheWire(t *testing.T) {
	t.Parallel()
	nc, _ := startService(t, zerolog.InfoLevel, nil)

	invalid := send(t, nc, "allocate_credits", `{"command_id":"x","account_id":"acme","credits":"5"}`)
	assert.Equal(t, "invalid_argument", invalid.Header.Get(micro.ErrorCodeHeader))
	assert.NotEmpty(t, invalid.Header.Get(micro.ErrorHeader))
	var rej api.Rejected
	require.NoError(t, json.Unmarshal(invalid.Data, &rej))
	assert.False(t, rej.OK)
	assert.Equal(t, ledger.CodeInvalidArgument, rej.Error.Code)

	release := send(t, nc, "release_credits", body("release_credits", "r1"))
	assert.Equal(t, "insufficient_allocation", release.Header.Get(micro.ErrorCodeHeader))
	assert.Equal(t, "release 5 of 0 allocated", release.Header.Get(micro.ErrorHeader))
	assert.JSONEq(t, `{"ok":false,"error":{"code":"insufficient_allocation","message":"release 5 of 0 allocated",`+
		`"data":{"allocated":"0","requested":"5"}}}`, string(release.Data))

	replay := send(t, nc, "allocate_credits", body("allocate_credits", "again-1"))
	assert.Equal(t, "true", replay.Header.Get(commands.ReplayedHeader))
	assert.Empty(t, replay.Header.Get(micro.ErrorCodeHeader))
	assert.JSONEq(t, `{"ok":true,"account_id":"acme","version":1,"position":1,"events":[{"type":"CreditsAllocated","version":1,"position":1}]}`,
		string(replay.Data))

	msg, err := nc.Request("$SRV.STATS."+commands.ServiceName, nil, 5*time.Second)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(msg.Data, &stats))
	byName := map[string]*micro.EndpointStats{}
	for _, e := range stats.Endpoints {
		byName[e.Name] = e
	}
	alloc, rel := byName["allocate_credits"], byName["release_credits"]
	require.NotNil(t, alloc)
	require.NotNil(t, rel)
	assert.Equal(t, 1, alloc.NumErrors, "the handler's invalid_argument")
	assert.Contains(t, alloc.LastError, "invalid_argument")
	assert.Equal(t, 1, rel.NumErrors, "the writer's insufficient_allocation")
	assert.Equal(t, "insufficient_allocation:release 5 of 0 allocated", rel.LastError)
	var data struct {
		Rejections    uint64            `json:"rejections"`
		LastRejection string            `json:"last_rejection"`
		ByCode        map[string]uint64 `json:"by_code"`
	}
	require.NoError(t, json.Unmarshal(rel.Data, &data))
	assert.Equal(t, uint64(1), data.Rejections)
	assert.Equal(t, map[string]uint64{"insufficient_allocation": 1}, data.ByCode)
	assert.Equal(t, "insufficient_allocation:release 5 of 0 allocated", data.LastRejection)
}

// TestEndpointMetadata: every command endpoint says what it does and names its schemas, and the
// service reports the version it was given.
func TestEndpointMetadata(t *testing.T) {
	t.Parallel()
	nc, _ := startService(t, zerolog.InfoLevel, nil)
	msg, err := nc.Request("$SRV.INFO."+commands.ServiceName, nil, 5*time.Second)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(msg.Data, &info))
	assert.Equal(t, "1.2.3", info.Version)
	require.Len(t, info.Endpoints, len(commands.Names()))
	for _, e := range info.Endpoints {
		assert.NotEmpty(t, e.Metadata[service.MetaDescription], e.Name)
		assert.NotEmpty(t, e.Metadata[service.MetaRequest], e.Name)
		assert.Equal(t, "Accepted", e.Metadata[service.MetaReply], e.Name)
		assert.Equal(t, "Rejected", e.Metadata[service.MetaError], e.Name)
	}
}

// TestWireHeaderNames: api spells micro's header names without importing micro.
func TestWireHeaderNames(t *testing.T) {
	t.Parallel()
	assert.Equal(t, micro.ErrorHeader, api.ErrorHeader)
	assert.Equal(t, micro.ErrorCodeHeader, api.ErrorCodeHeader)
}

// gateWriter holds every reply until `open` commands have been submitted, as a group commit
// holds a round: the endpoint must keep taking requests while earlier ones wait. Allocations are
// accepted, releases rejected (insufficient_credits).
type gateWriter struct {
	mu      sync.Mutex
	open    int
	pending []submit.Request
}

func (g *gateWriter) Submit(r submit.Request) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending = append(g.pending, r)
	if len(g.pending) < g.open {
		return nil
	}
	round := g.pending
	g.pending = nil
	go func() {
		for _, r := range round {
			res := submit.Result{AccountID: r.AccountID, Version: 1, Position: 1}
			if _, ok := r.Command.(ledger.ReleaseCredits); ok {
				res = submit.Result{AccountID: r.AccountID, Err: &ledger.Error{Code: ledger.CodeInsufficientCredits,
					Message: "requested 5 credits, 0 available", Data: map[string]string{"available": "0", "requested": "5"}}}
			}
			r.Reply(res)
		}
	}()
	return nil
}

// TestStatsCountEveryRejection: after N accepted commands and M writer rejections, answered
// together once all N+M are in (the endpoint is not serialised), and K invalid requests,
// $SRV.STATS reports N+M+K requests and M+K errors, the last error naming its code.
func TestStatsCountEveryRejection(t *testing.T) {
	t.Parallel()
	const n, rejected, invalid = 4, 3, 2
	w := &gateWriter{open: n + rejected}
	nc, _ := startServiceWith(t, w, zerolog.InfoLevel, nil)
	for i := 0; i < invalid; i++ { // first, so the writer's rejections come last
		msg := send(t, nc, "release_credits", `{"command_id":"","account_id":"acme"}`)
		require.Equal(t, "invalid_argument", msg.Header.Get(micro.ErrorCodeHeader))
	}
	var wg sync.WaitGroup
	codes := make(chan string, n+rejected)
	for i := 0; i < n+rejected; i++ {
		name := "allocate_credits"
		if i < rejected {
			name = "release_credits"
		}
		wg.Go(func() {
			msg, err := nc.Request(commands.Subject(name), []byte(body(name, fmt.Sprint("g", i))), 5*time.Second)
			if assert.NoError(t, err) {
				codes <- msg.Header.Get(micro.ErrorCodeHeader)
			}
		})
	}
	wg.Wait()
	close(codes)
	got := map[string]int{}
	for c := range codes {
		got[c]++
	}
	require.Equal(t, map[string]int{"": n, "insufficient_credits": rejected}, got)

	reply, err := nc.Request("$SRV.STATS."+commands.ServiceName, nil, 5*time.Second)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(reply.Data, &stats))
	byName := map[string]*micro.EndpointStats{}
	var requests, errs int
	for _, e := range stats.Endpoints {
		byName[e.Name] = e
		requests += e.NumRequests
		errs += e.NumErrors
	}
	assert.Equal(t, n+rejected+invalid, requests)
	assert.Equal(t, rejected+invalid, errs)
	rel, alloc := byName["release_credits"], byName["allocate_credits"]
	require.NotNil(t, rel)
	require.NotNil(t, alloc)
	assert.Equal(t, rejected+invalid, rel.NumRequests)
	assert.Equal(t, rejected+invalid, rel.NumErrors)
	assert.Equal(t, "insufficient_credits:requested 5 credits, 0 available", rel.LastError)
	assert.Equal(t, n, alloc.NumRequests)
	assert.Zero(t, alloc.NumErrors)
	assert.Empty(t, alloc.LastError)
}
