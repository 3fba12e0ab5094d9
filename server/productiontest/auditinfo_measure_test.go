package productiontest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// measureEnv is the integer in the environment variable name, or def.
func measureEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// latencies collects one kind of request's response times and errors during a measurement.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	errs []string
}

func (l *latencies) add(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, err.Error())
		return
	}
	l.d = append(l.d, d)
}

func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := slices.Clone(l.d)
	slices.Sort(d)
	if len(d) == 0 {
		return fmt.Sprintf("n=0 errs=%d %v", len(l.errs), firstFew(l.errs))
	}
	q := func(f float64) time.Duration { return d[min(len(d)-1, int(f*float64(len(d))))].Round(time.Microsecond) }
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v errs=%d %v", len(d), q(.5), q(.9), q(.99), d[len(d)-1].Round(time.Microsecond), len(l.errs), firstFew(l.errs))
}

// firstFew is at most the first three of s.
func firstFew(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// TestMeasureAuditorStreamInfoFlood measures what the auditors' stream infos do to the ledger: a
// LEDGER of MEASURE_ACCOUNTS accounts (100,000), then, for MEASURE_SECONDS (10) each, the
// ledger's head read (jetstore.Store.Head), a command and GET /readyz every 100 ms alone, with
// MEASURE_CONNS auditor connections (16, the account's bound) each keeping MEASURE_PER_CONN (1)
// requests of body MEASURE_BODY (subjects_filter ">" and deleted_details; "plain" for none) in
// flight, and, with MEASURE_OPEN set, after each connection has sent that many without waiting.
// The embedded server's warnings about its API queue are printed at the end. docs/SECURITY.md
// quotes its numbers. A measurement, not a test:
//
//	LEDGER_MEASURE=1 go test -run TestMeasureAuditorStreamInfoFlood -v ./server/productiontest/
func TestMeasureAuditorStreamInfoFlood(t *testing.T) {
	if os.Getenv("LEDGER_MEASURE") == "" {
		t.Skip("a measurement: LEDGER_MEASURE=1")
	}
	accounts := measureEnv("MEASURE_ACCOUNTS", 100_000)
	conns := measureEnv("MEASURE_CONNS", 16)
	perConn := measureEnv("MEASURE_PER_CONN", 1)
	seconds := measureEnv("MEASURE_SECONDS", 10)
	openLoop := measureEnv("MEASURE_OPEN", 0) // requests published without waiting, per connection
	body := os.Getenv("MEASURE_BODY")
	switch body {
	case "":
		body = `{"subjects_filter":">","deleted_details":true}`
	case "plain":
		body = ""
	}
	var sink logSink
	acc := writeAccess(t)
	cfg := baseConfig(t)
	cfg.Auth = acc.Config
	cfg.Checkpoints.Every, cfg.Checkpoints.Interval = -1, -1
	cfg.Log = zerolog.New(&sink).Level(zerolog.WarnLevel)
	srv := start(t, cfg)
	admin, _ := as(t, srv.ClientURL(), asLedger())
	waitServing(t, admin)
	t0 := time.Now()
	fillAccounts(t, admin, accounts)
	t.Logf("filled %d accounts in %v", accounts, time.Since(t0))
	t0 = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, srv.Projector().WaitFor(ctx, streamHead(t, admin)))
	t.Logf("projected in %v", time.Since(t0))

	// One auditor answer, to see its size and cost alone.
	aud, _ := as(t, srv.ClientURL(), asAuditor())
	t0 = time.Now()
	m, err := aud.Request("$JS.API.STREAM.INFO.LEDGER", []byte(body), time.Minute)
	require.NoError(t, err)
	t.Logf("one auditor STREAM.INFO %s: %d bytes in %v", body, len(m.Data), time.Since(t0))
	aud.Close()
	auds := make([]*nats.Conn, conns)
	for i := range auds {
		auds[i], _ = as(t, srv.ClientURL(), asAuditor())
	}

	store, err := jetstore.Open(ctx, admin, jetstore.Config{})
	require.NoError(t, err)
	cl := client(t, admin)
	probe := func(stop <-chan struct{}, head, cmd, ready *latencies) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			hctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			s := time.Now()
			_, err := store.Head(hctx)
			c()
			head.add(time.Since(s), err)
			s = time.Now()
			_, err = cl.PurchaseLicense(ctxT(t), purchase(fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), i), fmt.Sprintf("probe-%d", i%50), fmt.Sprintf("PL-%d-%d", time.Now().UnixNano(), i), "1"))
			cmd.add(time.Since(s), err)
			s = time.Now()
			code, _ := httpDo(t, "http://"+srv.HTTPAddr()+"/readyz", "")
			var rerr error
			if code != 200 {
				rerr = fmt.Errorf("readyz %d", code)
			}
			ready.add(time.Since(s), rerr)
		}
	}
	run := func(name string, flood func(stopProbe func()) string) {
		var head, cmd, ready latencies
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); probe(stop, &head, &cmd, &ready) }()
		var fl string
		if flood != nil {
			fl = flood(func() { close(stop) })
		} else {
			time.Sleep(time.Duration(seconds) * time.Second)
			close(stop)
		}
		wg.Wait()
		t.Logf("%s: %s\n  head:   %s\n  cmd:    %s\n  readyz: %s", name, fl, &head, &cmd, &ready)
	}
	run("baseline", nil)
	run(fmt.Sprintf("closed loop %d conns x %d", conns, perConn), func(stopProbe func()) string {
		var served, failed atomic.Int64
		var wg sync.WaitGroup
		done := make(chan struct{})
		for _, nc := range auds {
			for range perConn {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						if _, err := nc.Request("$JS.API.STREAM.INFO.LEDGER", []byte(body), 30*time.Second); err != nil {
							failed.Add(1)
						} else {
							served.Add(1)
						}
					}
				}()
			}
		}
		time.Sleep(time.Duration(seconds) * time.Second)
		close(done)
		stopProbe()
		wg.Wait()
		return fmt.Sprintf("auditor answers %d, failed %d", served.Load(), failed.Load())
	})
	if openLoop > 0 {
		run(fmt.Sprintf("open loop %d conns x %d requests", conns, openLoop), func(stopProbe func()) string {
			for _, nc := range auds {
				inbox := nc.NewInbox()
				for i := range openLoop {
					_ = nc.PublishRequest("$JS.API.STREAM.INFO.LEDGER", inbox+"."+strconv.Itoa(i), []byte(body))
				}
				_ = nc.Flush()
			}
			time.Sleep(time.Duration(seconds) * time.Second)
			stopProbe()
			return "published"
		})
	}
	for _, l := range strings.Split(sink.String(), "\n") {
		if strings.Contains(l, "queue") || strings.Contains(l, "took too long") || strings.Contains(l, "Slow") {
			t.Logf("log: %.300s", l)
		}
	}
}
