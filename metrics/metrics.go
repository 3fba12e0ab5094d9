package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/creditledger/creditledger/internal/buildinfo"
	"github.com/creditledger/creditledger/writer"
)

// Namespace prefixes every metric name.
const Namespace = "creditledger"

// OutcomeOK is the code label of an accepted command or an answered query.
const OutcomeOK = "ok"

// Transports of the query metrics.
const (
	TransportNATS = "nats"
	TransportHTTP = "http"
)

// DefaultStreamTimeout bounds the stream reads one scrape makes.
const DefaultStreamTimeout = 2 * time.Second

// Writer is the part of the writer the metrics read.
type Writer interface {
	Stats() writer.Stats
	Head() uint64
}

// Projector is the part of a projector the metrics read.
type Projector interface {
	Position() uint64
}

// Stream tells the event stream's head and when a position was stored.
type Stream interface {
	Head(ctx context.Context) (uint64, error)
	StoredAt(ctx context.Context, position uint64) (time.Time, error)
}

// Sources are what the metrics read at scrape time. Writer and Projector are required.
type Sources struct {
	Writer    Writer
	Projector Projector
	// Stream, when set, gives the lag against the stream's head (other nodes' appends included)
	// and the lag in seconds; without it the lag is measured against the writer's head only.
	Stream Stream
	// ReadModels are the read models the projector maintains (one position, one lag each).
	ReadModels []string
	// ParkedCount, when set, tells how many messages the projector has parked.
	ParkedCount func() int
	// AuditReads, when set, tells what the auditors' bounded direct-get relay has done
	// (auditread.Relay): nil where the node runs none.
	AuditReads func() AuditReads
	// AuditInfos, when set, tells what the auditors' bounded stream-info relay has done: nil
	// where the node runs none.
	AuditInfos func() AuditReads
	// Build labels creditledger_build_info (the running binary's when zero).
	Build buildinfo.Info
	// Now is the wall clock for lag in seconds (time.Now when nil; stored times are wall times).
	Now           func() time.Time
	StreamTimeout time.Duration
}

// Metrics is one process's registry and the instruments the edges report to.
type Metrics struct {
	reg            *prometheus.Registry
	commands       *prometheus.CounterVec
	commandSeconds *prometheus.HistogramVec
	queries        *prometheus.CounterVec
	querySeconds   *prometheus.HistogramVec
	httpRequests   *prometheus.CounterVec
}

// latencyBuckets run from 0.5 ms to about 8 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 15)

// New registers every metric on a fresh registry.
func New(src Sources) (*Metrics, error) {
	if src.Writer == nil || src.Projector == nil {
		return nil, errors.New("metrics: Writer and Projector are required")
	}
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.StreamTimeout <= 0 {
		src.StreamTimeout = DefaultStreamTimeout
	}
	if len(src.ReadModels) == 0 {
		src.ReadModels = []string{"all"}
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "commands_total",
			Help: "Commands answered, by command name and outcome code (ok or the rejection code).",
		}, []string{"command", "code"}),
		commandSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "command_duration_seconds",
			Help:    "Time from receiving a command to sending its reply (durable append included).",
			Buckets: latencyBuckets,
		}, []string{"command"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "queries_total",
			Help: "Queries answered, by query, transport (nats or http) and outcome code.",
		}, []string{"query", "transport", "code"}),
		querySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "query_duration_seconds",
			Help:    "Time to answer a query (a min_position wait included), by query and transport.",
			Buckets: latencyBuckets,
		}, []string{"query", "transport"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern and status code (401/403 included).",
		}, []string{"route", "code"}),
	}
	cs := []prometheus.Collector{
		m.commands, m.commandSeconds, m.queries, m.querySeconds, m.httpRequests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&projectionCollector{src: src},
	}
	cs = append(cs, writerCollectors(src.Writer)...)
	if src.Build == (buildinfo.Info{}) {
		src.Build = buildinfo.Read()
	}
	cs = append(cs, buildInfo(src.Build))
	if src.ParkedCount != nil {
		cs = append(cs, parkedMessages(src.ParkedCount))
	}
	if src.AuditReads != nil {
		cs = append(cs, auditReadCollectors("audit_reads", "direct gets", src.AuditReads)...)
	}
	if src.AuditInfos != nil {
		cs = append(cs, auditReadCollectors("audit_infos", "stream infos", src.AuditInfos)...)
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func writerCollectors(w Writer) []prometheus.Collector {
	counter := func(name, help string, f func(writer.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help},
			func() float64 { return float64(f(w.Stats())) })
	}
	return []prometheus.Collector{
		counter("events_appended_total", "Events this process appended to the LEDGER stream.",
			func(s writer.Stats) uint64 { return s.Records }),
		counter("appends_total", "Atomic appends (group commits) this process made.",
			func(s writer.Stats) uint64 { return s.Appends }),
		counter("commands_appended_total", "Commands whose events this process appended.",
			func(s writer.Stats) uint64 { return s.Commands }),
		counter("append_failures_total", "Appends refused (expected-sequence conflict) or failed; their commands are re-decided.",
			func(s writer.Stats) uint64 { return s.FailedAppends }),
		counter("conflicts_retried_total", "Commands re-decided after a refused or failed append (bounded attempts).",
			func(s writer.Stats) uint64 { return s.Retried }),
		counter("idempotent_replays_total", "Commands answered with the first reply of their command_id, appending nothing.",
			func(s writer.Stats) uint64 { return s.Replayed }),
		counter("idempotency_read_back_total", "Replays of older commands whose first reply was read back from the stream (the record was in compact form).",
			func(s writer.Stats) uint64 { return s.ReadBack }),
		counter("command_ids_recorded_total", "Command ids recorded for their account in the shared LEDGER_COMMANDS bucket before their commands were decided (every new command on a node that may share its store; a lone node only while it does not own every partition).",
			func(s writer.Stats) uint64 { return s.CommandClaims }),
		counter("rejection_read_back_total", "Replays of older rejections read back from the rejection log (the rejection was in compact form).",
			func(s writer.Stats) uint64 { return s.RejectionReadBack }),
		counter("rejections_pruned_total", "Compact rejections dropped because the rejection log no longer holds their message (past its retention).",
			func(s writer.Stats) uint64 { return s.RejectionsPruned }),
		counter("rejections_revoked_total", "Rejections stored in the rejection log but never answered (the partition moved, or its fence could not be read), revoked there so that no later load replays them.",
			func(s writer.Stats) uint64 { return s.Revocations }),
		counter("rejection_revocations_failed_total", "Revocations of unanswered rejections that could not be written: a later load may replay those rejections.",
			func(s writer.Stats) uint64 { return s.RevocationsFailed }),
		counter("accounts_marked_broken_total", "Accounts refused history_broken because the projector parked a message on them that the writer had not verified.",
			func(s writer.Stats) uint64 { return s.MarkedBroken }),
		counter("broken_marks_dropped_total", "Projector reports of a broken account dropped because the writer's bounded queue of them was full.",
			func(s writer.Stats) uint64 { return s.MarksDropped }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "append_seconds_total",
			Help: "Total time spent in appends; divided by appends_total it is the mean append time."},
			func() float64 { return float64(w.Stats().AppendMicros) / 1e6 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "writer_head_position",
			Help: "Last stream position this process's writer committed or loaded."},
			func() float64 { return float64(w.Head()) }),
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Registry is the registry the metrics live in (to add more, or to gather in tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCommand records one answered command; code is OutcomeOK or the rejection code.
func (m *Metrics) ObserveCommand(name, code string, d time.Duration) {
	m.commands.WithLabelValues(name, code).Inc()
	m.commandSeconds.WithLabelValues(name).Observe(d.Seconds())
}

// ObserveQuery records one answered query; code is OutcomeOK or the rejection code.
func (m *Metrics) ObserveQuery(name, transport, code string, d time.Duration) {
	m.queries.WithLabelValues(name, transport, code).Inc()
	m.querySeconds.WithLabelValues(name, transport).Observe(d.Seconds())
}

// ObserveHTTP records one HTTP request by route pattern and status.
func (m *Metrics) ObserveHTTP(route string, status int) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}
