package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
	"github.com/creditledger/creditledger/server"
	"github.com/creditledger/creditledger/writer"
)

// Options configure a bench run.
type Options struct {
	// NATSURL drives an existing ledger; empty starts an embedded one in DataDir.
	NATSURL string
	// ConnOptions (credentials, TLS: natsconn) apply to the connections to NATSURL; leave them
	// empty for the embedded ledger.
	ConnOptions []nats.Option
	DataDir     string
	Load        LoadConfig
	RawFor      time.Duration
	LagFor      time.Duration
	// RestartEvents tops the store up to this many events and measures a restart (embedded only; 0 skips).
	RestartEvents uint64
	// MaxInflight tunes the embedded ledger's writer (0: default).
	MaxInflight int
	// Linger tunes the embedded ledger's group-commit linger (0: default).
	Linger time.Duration
	// CPUOf names the processes, beside this one, whose CPU the figures count (the nodes and
	// servers of NATSURL on this machine, by process id): with them a run over NATSURL has CPU
	// figures and a CPU bound, as an embedded run has.
	CPUOf []int
	Log   zerolog.Logger
}

// Report is everything one run measured; it is printed as a table and written as JSON.
type Report struct {
	Machine string `json:"machine"`
	// Cores is the machine's CPU count; Embedded says the ledger and its nats-server ran in this
	// process, so that the process's CPU figures cover them.
	Cores    int  `json:"cores"`
	Embedded bool `json:"embedded"`
	// CPUOf is Options.CPUOf: the other processes the CPU figures count.
	CPUOf     []int     `json:"cpu_of_pids,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// Raw is the mean of RawBefore and RawAfter, measured either side of the ledger's load: the
	// machine's speed drifts during a run, and the ratios should not depend on which side of
	// the load a slow minute fell.
	Raw          RawBaselines       `json:"raw_jetstream"`
	RawBefore    RawBaselines       `json:"raw_jetstream_before_load"`
	RawAfter     RawBaselines       `json:"raw_jetstream_after_load"`
	Load         LoadResult         `json:"load"`
	LagLoad      LoadResult         `json:"lag_load"`
	Ratios       map[string]float64 `json:"ratios"`
	Replay       ReplayResult       `json:"replay"`
	Restart      *RestartResult     `json:"restart,omitempty"`
	PeakRSSBytes int64              `json:"peak_rss_bytes"`
	BytesPerAcct float64            `json:"heap_bytes_per_account"`
	AccountsHeld int                `json:"accounts_held"`
	StreamEvents uint64             `json:"stream_events"`
	Writer       *WriterFigures     `json:"writer,omitempty"`
}

// WriterFigures describe the group commit during the main load (embedded ledger only).
type WriterFigures struct {
	Appends           uint64  `json:"appends"`
	RecordsPerAppend  float64 `json:"records_per_append"`
	CommandsPerAppend float64 `json:"commands_per_append"`
	AppendMillisMean  float64 `json:"append_ms_mean"`
	FailedAppends     uint64  `json:"failed_appends"`
}

func diffStats(after, before writer.Stats) *WriterFigures {
	n := after.Appends - before.Appends
	if n == 0 {
		return &WriterFigures{}
	}
	return &WriterFigures{
		Appends: n, RecordsPerAppend: float64(after.Records-before.Records) / float64(n),
		CommandsPerAppend: float64(after.Commands-before.Commands) / float64(n),
		AppendMillisMean:  float64(after.AppendMicros-before.AppendMicros) / float64(n) / 1000,
		FailedAppends:     after.FailedAppends - before.FailedAppends,
	}
}

// ReplayResult compares reading the stream raw with rebuilding the projections from it.
type ReplayResult struct {
	Events           uint64  `json:"events"`
	RawOrderedPerSec float64 `json:"raw_ordered_read_per_s"`
	RebuildPerSec    float64 `json:"projection_rebuild_per_s"`
	// AuditReplayPerSec is `creditledger audit replay` writing JSON lines to a discarding sink.
	AuditReplayPerSec float64 `json:"audit_replay_per_s"`
}

// RestartResult is how long a restart took to serve queries.
type RestartResult struct {
	Events  uint64  `json:"events"`
	Seconds float64 `json:"seconds_to_ready"`
}

// cpuCovered says the CPU figures cover the ledger and its servers, not only the load tool:
// they ran in this process, or CPUOf named their processes.
func (r *Report) cpuCovered() bool { return r.Embedded || len(r.CPUOf) > 0 }

// Run performs the whole benchmark.
func Run(ctx context.Context, o Options, progress io.Writer) (*Report, error) {
	rep := &Report{StartedAt: time.Now().UTC(), Machine: fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Cores: runtime.NumCPU(), Embedded: o.NATSURL == "", CPUOf: o.CPUOf}
	meter := cpuMeter{pids: o.CPUOf}
	if err := meter.check(); err != nil {
		return nil, err
	}
	var srv *server.Server
	url := o.NATSURL
	startCfg := server.Config{DataDir: o.DataDir, NATSListen: "127.0.0.1:-1", Log: o.Log, MaxInflight: o.MaxInflight, Linger: o.Linger}
	if url == "" {
		var err error
		if srv, err = server.Start(ctx, startCfg); err != nil {
			return nil, err
		}
		defer func() { srv.Shutdown(context.Background()) }()
		url = srv.ClientURL()
		startCfg.NATSListen = strings.TrimPrefix(url, "nats://")
	}
	conns, err := dial(url, 4, o.ConnOptions...)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	step := func(s string) { fmt.Fprintf(progress, "bench: %s\n", s) }

	step("raw JetStream baselines")
	if rep.RawBefore, err = measureRaw(ctx, conns[0], o.RawFor, o.Load.Clients, meter); err != nil {
		return nil, err
	}
	if o.Load.RunID == "" {
		o.Load.RunID = strconv.FormatInt(time.Now().Unix()%100000, 36)
	}
	d := newDriver(conns, o.Load.RunID, meter)
	step(fmt.Sprintf("setting up %d accounts", o.Load.Accounts))
	if err := d.Setup(ctx, o.Load); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("load: %d clients", o.Load.Clients))
	var before writer.Stats
	if srv != nil {
		before = srv.WriterStats()
	}
	rep.Load = d.Run(ctx, o.Load, false)
	if srv != nil {
		rep.Writer = diffStats(srv.WriterStats(), before)
	}
	half := o.Load
	half.Clients, half.Duration, half.Commands = max(1, o.Load.Clients/2), o.LagFor, 0
	step(fmt.Sprintf("projection lag: %d clients", half.Clients))
	rep.LagLoad = d.Run(ctx, half, true)

	step("raw JetStream baselines again")
	if rep.RawAfter, err = measureRaw(ctx, conns[0], o.RawFor, o.Load.Clients, meter); err != nil {
		return nil, err
	}
	if !rep.cpuCovered() { // the process's CPU is the load tool's alone: no figure of the server's
		for _, b := range []*RawBaselines{&rep.RawBefore, &rep.RawAfter} {
			b.BatchOfClientsCPUMicrosPerMsg, b.Batch1000CPUMicrosPerMsg = 0, 0
		}
	}
	rep.Raw = meanRaw(rep.RawBefore, rep.RawAfter)

	step("replay")
	if rep.Replay, err = measureReplay(ctx, conns[0]); err != nil {
		return nil, err
	}
	rep.StreamEvents = rep.Replay.Events
	if srv != nil && o.RestartEvents > 0 {
		const minTopUp = 5000
		for head := srv.Head(); head < o.RestartEvents; {
			step(fmt.Sprintf("topping the store up: %d of %d events", head, o.RestartEvents))
			// At least minTopUp commands a round: a fifth of the mix are queries and a third of
			// the commands are rejected, so a round of exactly the events missing adds about half
			// of them, and the last rounds (one command, a query) added none.
			fill := o.Load
			fill.Duration, fill.Commands = 0, int(max(o.RestartEvents-head, minTopUp))
			d.Run(ctx, fill, false)
			next := srv.Head()
			if next == head {
				// Every command of a round was rejected (the accounts' credits are spent): the
				// loop would never end. More accounts give the load room to grow the store.
				return nil, fmt.Errorf("topping the store up: stuck at %d of %d events (every command rejected); use more --accounts", head, o.RestartEvents)
			}
			head = next
		}
		step("restart")
		closeAll(conns)
		events := srv.Head()
		srv.Shutdown(ctx)
		t0 := time.Now()
		if srv, err = server.Start(ctx, startCfg); err != nil {
			return nil, fmt.Errorf("restart: %w", err)
		}
		if conns, err = dial(srv.ClientURL(), 1); err != nil {
			return nil, err
		}
		if _, err := conns[0].Request("ledger.query.balance", []byte(`{"account_id":"`+d.account(0)+`"}`), 10*time.Second); err != nil {
			return nil, fmt.Errorf("query after restart: %w", err)
		}
		rep.Restart = &RestartResult{Events: events, Seconds: time.Since(t0).Seconds()}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rep.AccountsHeld = srv.Projector().Accounts()
		if rep.AccountsHeld > 0 {
			rep.BytesPerAcct = float64(ms.HeapInuse) / float64(rep.AccountsHeld)
		}
	}
	rep.PeakRSSBytes = peakRSS()
	rep.Ratios = ratios(rep)
	return rep, nil
}

func dial(url string, n int, opts ...nats.Option) ([]*nats.Conn, error) {
	var out []*nats.Conn
	for i := 0; i < n; i++ {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Name("creditledger-bench")}, opts...)...)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("connect %s: %w", url, err)
		}
		out = append(out, nc)
	}
	return out, nil
}

func closeAll(conns []*nats.Conn) {
	for _, nc := range conns {
		nc.Close()
	}
}

func measureReplay(ctx context.Context, nc *nats.Conn) (ReplayResult, error) {
	raw, n, err := MeasureOrderedRead(ctx, nc, jetstore.StreamName, nil)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("raw read: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return ReplayResult{}, err
	}
	stream, err := js.Stream(ctx, jetstore.StreamName)
	if err != nil {
		return ReplayResult{}, err
	}
	start := time.Now()
	proj, err := projections.Rebuild(ctx, stream, zerolog.Nop())
	if err != nil {
		return ReplayResult{}, fmt.Errorf("rebuild: %w", err)
	}
	rebuild := float64(proj.Position()) / time.Since(start).Seconds()
	src, err := audit.NewSource(ctx, nc)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("audit source: %w", err)
	}
	start = time.Now()
	lines, _, err := audit.ReplayStored(ctx, src, audit.Filter{}, io.Discard)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("audit replay: %w", err)
	}
	replay := float64(lines) / time.Since(start).Seconds()
	return ReplayResult{Events: n, RawOrderedPerSec: raw, RebuildPerSec: rebuild, AuditReplayPerSec: replay}, nil
}

func meanRaw(a, b RawBaselines) RawBaselines {
	return RawBaselines{
		PublishOneAtATime: (a.PublishOneAtATime + b.PublishOneAtATime) / 2,
		AtomicBatch100:    (a.AtomicBatch100 + b.AtomicBatch100) / 2,
		AtomicBatch1000:   (a.AtomicBatch1000 + b.AtomicBatch1000) / 2,
		BatchOfClients:    a.BatchOfClients, AtomicBatchOfClients: (a.AtomicBatchOfClients + b.AtomicBatchOfClients) / 2,
		Replicas:                      a.Replicas,
		BatchOfClientsCPUMicrosPerMsg: (a.BatchOfClientsCPUMicrosPerMsg + b.BatchOfClientsCPUMicrosPerMsg) / 2,
		Batch1000CPUMicrosPerMsg:      (a.Batch1000CPUMicrosPerMsg + b.Batch1000CPUMicrosPerMsg) / 2,
	}
}

func ratios(r *Report) map[string]float64 {
	out := map[string]float64{}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	out["accepted_vs_atomic_batch_1000"] = div(r.Load.AcceptedPerSecond, r.Raw.AtomicBatch1000)
	out["accepted_vs_atomic_batch_100"] = div(r.Load.AcceptedPerSecond, r.Raw.AtomicBatch100)
	out["accepted_vs_one_at_a_time"] = div(r.Load.AcceptedPerSecond, r.Raw.PublishOneAtATime)
	out["commands_vs_atomic_batch_1000"] = div(r.Load.CommandsPerSecond, r.Raw.AtomicBatch1000)
	out["answered_vs_atomic_batch_1000"] = div(r.Load.AnsweredPerSecond, r.Raw.AtomicBatch1000)
	out["commands_vs_one_at_a_time"] = div(r.Load.CommandsPerSecond, r.Raw.PublishOneAtATime)
	if r.Raw.AtomicBatchOfClients > 0 {
		out["accepted_vs_atomic_batch_of_clients"] = div(r.Load.AcceptedPerSecond, r.Raw.AtomicBatchOfClients)
		out["commands_vs_atomic_batch_of_clients"] = div(r.Load.CommandsPerSecond, r.Raw.AtomicBatchOfClients)
		out["answered_vs_atomic_batch_of_clients"] = div(r.Load.AnsweredPerSecond, r.Raw.AtomicBatchOfClients)
	}
	if cores := float64(r.Cores); r.cpuCovered() && cores > 0 && r.Load.CPUMicrosPerOp > 0 && r.Load.Accepted > 0 {
		// The most accepted commands a second this machine's cores could carry at the CPU the
		// run measured per request (ledger, server and load tool, the mix's queries and
		// rejections included): a ratio no change to the command path's waiting can pass
		// without also cutting that CPU.
		perAccepted := r.Load.CPUMicrosPerOp * float64(r.Load.Commands+r.Load.Queries) / float64(r.Load.Accepted)
		bound := cores * 1e6 / perAccepted
		out["accepted_cpu_bound_vs_atomic_batch_1000"] = div(bound, r.Raw.AtomicBatch1000)
		if r.Raw.AtomicBatchOfClients > 0 {
			out["accepted_cpu_bound_vs_atomic_batch_of_clients"] = div(bound, r.Raw.AtomicBatchOfClients)
		}
	}
	out["rebuild_vs_raw_read"] = div(r.Replay.RebuildPerSec, r.Replay.RawOrderedPerSec)
	out["audit_replay_vs_raw_read"] = div(r.Replay.AuditReplayPerSec, r.Replay.RawOrderedPerSec)
	return out
}

// peakRSS reads the process's peak resident set size (VmHWM) on Linux; 0 elsewhere.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("machine\t%s", r.Machine)
	p("raw: scratch stream\tfile storage, %d replica(s) like LEDGER", r.Raw.Replicas)
	raw := func(label string, f func(RawBaselines) float64) {
		p("raw: %s\t%.0f msgs/s (before %.0f, after %.0f the load)", label, f(r.Raw), f(r.RawBefore), f(r.RawAfter))
	}
	raw("publish one at a time, expected seq", func(b RawBaselines) float64 { return b.PublishOneAtATime })
	raw("atomic batch of 100", func(b RawBaselines) float64 { return b.AtomicBatch100 })
	raw("atomic batch of 1000", func(b RawBaselines) float64 { return b.AtomicBatch1000 })
	if r.Raw.BatchOfClients > 0 {
		raw(fmt.Sprintf("atomic batch of %d (= clients: the closed-loop ceiling)", r.Raw.BatchOfClients),
			func(b RawBaselines) float64 { return b.AtomicBatchOfClients })
	}
	l := r.Load
	p("ledger: clients / accounts / mix\t%d / %d / %s", l.Clients, l.Accounts, l.Mix)
	p("ledger: commands accepted\t%.0f /s (%d of %d commands, %.0f commands/s incl. rejections)", l.AcceptedPerSecond, l.Accepted, l.Commands, l.CommandsPerSecond)
	p("ledger: commands answered (accepted or rejected by a rule)\t%.0f /s (the issue's targets count accepted ones)", l.AnsweredPerSecond)
	if l.CPUMicrosPerOp > 0 {
		p("process CPU per request (ledger, server and load)\t%.0f us", l.CPUMicrosPerOp)
	}
	if r.cpuCovered() && r.Raw.BatchOfClientsCPUMicrosPerMsg > 0 {
		p("process CPU per raw message: batch of %d / of 1000\t%.1f / %.1f us", r.Raw.BatchOfClients, r.Raw.BatchOfClientsCPUMicrosPerMsg, r.Raw.Batch1000CPUMicrosPerMsg)
	} else if r.cpuCovered() && r.Raw.Batch1000CPUMicrosPerMsg > 0 {
		p("process CPU per raw message: batch of 1000\t%.1f us", r.Raw.Batch1000CPUMicrosPerMsg)
	}
	p("ledger: command latency p50 / p99 / p99.9\t%.2f / %.2f / %.2f ms", l.Latency.P50, l.Latency.P99, l.Latency.P999)
	p("ledger: rejections by code\t%s", countList(l.Rejections))
	p("ledger: errors\t%s", countList(l.Errors))
	if wf := r.Writer; wf != nil {
		p("writer: appends / records per append / commands per append\t%d / %.1f / %.1f", wf.Appends, wf.RecordsPerAppend, wf.CommandsPerAppend)
		p("writer: mean append time\t%.2f ms (%d failed)", wf.AppendMillisMean, wf.FailedAppends)
	}
	if lag := r.LagLoad.ProjectionLag; lag != nil {
		p("projection lag at %d clients p50 / p99\t%.2f / %.2f ms", r.LagLoad.Clients, lag.P50, lag.P99)
	}
	for _, k := range []string{"accepted_vs_atomic_batch_1000", "answered_vs_atomic_batch_1000", "accepted_vs_atomic_batch_100",
		"accepted_vs_one_at_a_time", "commands_vs_one_at_a_time", "accepted_vs_atomic_batch_of_clients",
		"answered_vs_atomic_batch_of_clients", "commands_vs_atomic_batch_of_clients",
		"accepted_cpu_bound_vs_atomic_batch_of_clients", "accepted_cpu_bound_vs_atomic_batch_1000",
		"rebuild_vs_raw_read", "audit_replay_vs_raw_read"} {
		if v, ok := r.Ratios[k]; ok {
			p("ratio %s\t%.2f", k, v)
		}
	}
	p("replay: raw ordered read / projection rebuild / audit replay\t%.0f / %.0f / %.0f events/s over %d events",
		r.Replay.RawOrderedPerSec, r.Replay.RebuildPerSec, r.Replay.AuditReplayPerSec, r.Replay.Events)
	if r.Restart != nil {
		p("restart to ready\t%.2f s with %d events", r.Restart.Seconds, r.Restart.Events)
		p("heap per account\t%.0f bytes (%d accounts)", r.BytesPerAcct, r.AccountsHeld)
	}
	p("peak RSS (ledger and load in one process)\t%.0f MiB", float64(r.PeakRSSBytes)/(1<<20))
	_ = tw.Flush()
}

// countList renders counts by name for people: the largest first, "none" when empty
// ("insufficient_credits 120, not_found 3").
func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
