package auditread

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/authz"
)

// Publisher sends the answers to the auditors: header blocks byte for byte (Wire).
type Publisher interface {
	Publish(subject string, hdr, data []byte) error
	Flush() error
}

// Config configures a Relay.
type Config struct {
	// Streams are the streams whose requests are served (authz.Config.AuditorStreamNames).
	Streams []string
	// Limits cap each direct get (Start; StartStreamInfo has none).
	Limits Limits
	// Slots bounds the requests passed on at once, on this node (DefaultSlots, and
	// DefaultInfoSlots for stream infos): the node holds at most Slots answers of at most
	// Limits.MaxBytes (and one message) for the auditors' direct gets.
	Slots int
	// Queue bounds the requests waiting for a slot (DefaultQueue, DefaultInfoQueue); one more is
	// answered busy (429 Too Many Requests; JetStream's 429 "too many requests" error to a stream
	// info) at once.
	Queue int
	// QueueWait is the longest a request waits for a slot (DefaultQueueWait); one that waited
	// longer is answered busy.
	QueueWait time.Duration
	// AnswerWindow bounds one read, from its arrival to its last answer (DefaultAnswerWindow):
	// the server keeps the route back to the auditor that long (authz: response_threshold).
	AnswerWindow time.Duration
	// InSlot, when set, runs in each read's slot before the read is passed on (tests hold slots
	// with it).
	InSlot func()
	Log    zerolog.Logger
}

// Defaults of Config.
const (
	DefaultSlots        = 16
	DefaultQueue        = 256
	DefaultQueueWait    = 2 * time.Second
	DefaultAnswerWindow = 10 * time.Second
)

// queueGroup makes a cluster serve each read once (on the node the auditor is connected to when
// it can: the server prefers local queue subscribers).
const queueGroup = "creditledger-auditread"

// jsDirectGet is the JetStream API subject the reads are passed on to.
const jsDirectGet = "$JS.API.DIRECT.GET."

// kind is what one Relay serves: where its requests arrive and go, how many it runs at once by
// default, how it reads each one and how it words its own answers.
type kind struct {
	subject, group string
	// target is the JetStream API subject a request for "<rest>" is passed on to: target+rest.
	target       string
	slots, queue int
	// read checks a request whose subject ends in rest: what to pass on, the relay's own answer
	// in its place, or drop (a form no auditor import sends).
	read func(rest string, body []byte) (req bounded, refused *reply, drop bool)
	// busy answers a request that found no slot in time; tooLong one whose protocol line, passed
	// on, would pass the server's max_control_line.
	busy, tooLong reply
}

// reply is one answer the relay gives itself: a header block (nil for none) and data.
type reply struct {
	hdr, data []byte
}

// directGets is the kind of the auditors' direct gets (Start).
func directGets(l Limits, streams map[string]bool) kind {
	return kind{
		subject: authz.SubjectAuditRead, group: queueGroup, target: jsDirectGet, slots: DefaultSlots, queue: DefaultQueue,
		read: func(rest string, body []byte) (bounded, *reply, bool) {
			stream, subject, bySubject := strings.Cut(rest, ".")
			if !streams[stream] || (bySubject && subject == "") {
				return bounded{}, nil, true
			}
			req, refused := l.bound(body, bySubject)
			if refused != nil {
				r := refused.reply()
				return bounded{}, &r, false
			}
			return req, nil, false
		},
		busy: statusBusy.reply(), tooLong: statusBad.reply(),
	}
}

// maxControlLine is nats-server's default max_control_line, the longest protocol line it takes
// from a client (the embedded server keeps the default): a longer one closes the connection.
const maxControlLine = 4096

// Stats are a Relay's counts, for metrics and tests.
type Stats struct {
	// InFlight is the reads holding a slot now; Peak the most there ever were; Waiting the reads
	// queued for a slot now.
	InFlight, Peak, Waiting int64
	// Served, Refused (malformed; a stream info asking for subjects_filter), Busy (no slot in
	// time) and Dropped (no reply subject of an import, or a stream not served) count the
	// requests so far.
	Served, Refused, Busy, Dropped uint64
}

// Relay takes the auditors' direct gets on authz.SubjectAuditRead (Start), or their stream infos
// on authz.SubjectAuditInfo (StartStreamInfo), and passes them on, bounded.
type Relay struct {
	cfg  Config
	kind kind
	nc   *nats.Conn
	out  Publisher
	// maxRest is the longest "<stream>[.<subject>]" passed on: one line within maxControlLine.
	maxRest int
	sub     *nats.Subscription
	queue   chan job
	stop    chan struct{}
	wg      sync.WaitGroup
	stopped sync.Once

	inFlight, peak                 atomic.Int64
	served, refused, busy, dropped atomic.Uint64
}

// job is one read waiting for a slot.
type job struct {
	at     time.Time
	reply  string // the server's reply subject of the import (_R_.)
	target string // the JetStream API subject
	req    bounded
	hdr    nats.Header
}

// Start serves the auditors' direct gets: it subscribes on nc, which must be allowed to
// subscribe to authz.SubjectAuditRead and to publish to the JetStream API (the ledger
// identity), and answers through out.
func Start(nc *nats.Conn, out Publisher, cfg Config) (*Relay, error) {
	return start(nc, out, cfg, directGets(cfg.Limits.withDefaults(), streamSet(cfg.Streams)))
}

// streamSet is names as a set.
func streamSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, s := range names {
		set[s] = true
	}
	return set
}

// start runs a Relay of kind k.
func start(nc *nats.Conn, out Publisher, cfg Config, k kind) (*Relay, error) {
	if nc == nil || out == nil {
		return nil, errors.New("auditread: relay needs a connection and a publisher")
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Slots <= 0 {
		cfg.Slots = k.slots
	}
	if cfg.Queue <= 0 {
		cfg.Queue = k.queue
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = DefaultQueueWait
	}
	if cfg.AnswerWindow <= 0 {
		cfg.AnswerWindow = DefaultAnswerWindow
	}
	r := &Relay{cfg: cfg, kind: k, nc: nc, out: out, queue: make(chan job, cfg.Queue), stop: make(chan struct{})}
	// "HPUB <target> <inbox> <header length> <total length>": the lengths take 8 digits each at
	// most (max_payload is at most 64 MiB), the spaces 4.
	r.maxRest = maxControlLine - len(k.target) - len(nc.NewInbox()) - 2*8 - 4
	sub, err := nc.QueueSubscribe(k.subject, k.group, r.take)
	if err != nil {
		return nil, fmt.Errorf("auditread: subscribe: %w", err)
	}
	// Requests are small and the queue above bounds the waiting ones; these bound a flood
	// before the callback sees it.
	if err := sub.SetPendingLimits(4*cfg.Queue, 16<<20); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("auditread: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("auditread: subscribe: %w", err)
	}
	r.sub = sub
	for range cfg.Slots {
		r.wg.Add(1)
		go r.work()
	}
	return r, nil
}

// Stop takes no more reads, lets the running ones finish and answers the waiting ones busy.
func (r *Relay) Stop() {
	r.stopped.Do(func() {
		_ = r.sub.Unsubscribe()
		close(r.stop)
		r.wg.Wait()
		for {
			select {
			case j := <-r.queue:
				r.answer(j.reply, r.kind.busy, &r.busy)
			default:
				return
			}
		}
	})
}

// Stats are the counts so far.
func (r *Relay) Stats() Stats {
	return Stats{InFlight: r.inFlight.Load(), Peak: r.peak.Load(), Waiting: int64(len(r.queue)), Served: r.served.Load(),
		Refused: r.refused.Load(), Busy: r.busy.Load(), Dropped: r.dropped.Load()}
}

// take reads one request (on the subscription's goroutine) and queues it for a slot.
func (r *Relay) take(m *nats.Msg) {
	at := time.Now()
	// Only a request that came through an auditor's import has a reply subject of the server's
	// (_R_.); nothing else may publish here (authz), and the answers go nowhere else.
	rest, ok := strings.CutPrefix(m.Subject, strings.TrimSuffix(r.kind.subject, ">"))
	if !ok || !strings.HasPrefix(m.Reply, authz.ImportReplyPrefix+".") {
		r.dropped.Add(1)
		return
	}
	req, refused, drop := r.kind.read(rest, m.Data)
	switch {
	case drop:
		r.dropped.Add(1)
		return
	case len(rest) > r.maxRest:
		// Passed on with the relay's longer inbox as its reply, the request's line would pass
		// the server's max_control_line, and the server would cut the relay's connection (every
		// auditor's reads with it) for one auditor's request.
		r.answer(m.Reply, r.kind.tooLong, &r.refused)
		return
	case refused != nil:
		r.answer(m.Reply, *refused, &r.refused)
		return
	}
	j := job{at: at, reply: m.Reply, target: r.kind.target + rest, req: req}
	// The one request header JetStream reads on a direct get or a stream info.
	if lvl := m.Header.Get("Nats-Required-Api-Level"); lvl != "" {
		j.hdr = nats.Header{"Nats-Required-Api-Level": []string{lvl}}
	}
	select {
	case r.queue <- j:
	default:
		r.answer(m.Reply, r.kind.busy, &r.busy)
	}
}

// work serves queued reads, one at a time: each worker is a slot.
func (r *Relay) work() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case j := <-r.queue:
			if time.Since(j.at) > r.cfg.QueueWait {
				r.answer(j.reply, r.kind.busy, &r.busy)
				continue
			}
			n := r.inFlight.Add(1)
			for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
			}
			if r.cfg.InSlot != nil {
				r.cfg.InSlot()
			}
			if err := r.relay(j); err != nil {
				r.cfg.Log.Warn().Err(err).Str("subject", j.target).Msg("an auditor's read was not answered in full")
			}
			r.inFlight.Add(-1)
			r.served.Add(1)
		}
	}
}

// relay passes one read on to the JetStream API and copies its answers to the auditor's reply
// subject: until the first status for a batch (the end-of-batch marker, or an error), the first
// answer otherwise, or the end of the answer window (the auditor then times out, as it would
// have).
func (r *Relay) relay(j job) error {
	inbox := r.nc.NewInbox()
	sub, err := r.nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.nc.PublishMsg(&nats.Msg{Subject: j.target, Reply: inbox, Header: j.hdr, Data: j.req.body}); err != nil {
		return err
	}
	deadline := j.at.Add(r.cfg.AnswerWindow)
	// JetStream sends at most MaxBatch messages and a status; the bound only guards the loop.
	for range r.cfg.Limits.MaxBatch + 2 {
		wait := time.Until(deadline)
		if wait <= 0 {
			return errors.New("answer window passed")
		}
		m, err := sub.NextMsg(wait)
		if err != nil {
			return err
		}
		status := m.Header.Get("Status")
		if err := r.out.Publish(j.reply, wireHeader(m.Header), m.Data); err != nil {
			return err
		}
		if status != "" || !j.req.batch {
			return r.out.Flush()
		}
	}
	return r.out.Flush()
}

// answer sends the relay's own answer a to subject and counts it.
func (r *Relay) answer(subject string, a reply, count *atomic.Uint64) {
	count.Add(1)
	if err := r.out.Publish(subject, a.hdr, a.data); err == nil {
		_ = r.out.Flush()
	}
}
