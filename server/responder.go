package server

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/internal/microsvc"
	"github.com/creditledger/creditledger/metrics"
)

// The ledger answers requests with a connection of its own, the responder, apart from the
// connection that appends (security.go): with an access config the embedded server gives the
// responder its own user, which may publish only into the users' inboxes
// (authz.ResponderPermissions). A requester chooses its reply subject; whatever it chooses, the
// answer cannot land on a ledger subject, in a stream or on the JetStream API.
//
// guardReplies adds the same rule in the process, where it also holds without an access config
// or towards --nats-url: a request whose reply subject is missing or outside the inbox space is
// not served at all (a command is not even decided) and is counted.

// Reasons of the unanswered-requests metric.
const (
	unansweredNoReply      = "no_reply"
	unansweredOutsideInbox = "reply_outside_inboxes"
	// unansweredLogEvery bounds the log lines about unanswered requests (the metric counts all).
	unansweredLogEvery = 10 * time.Second
)

// replyGuard decides which reply subjects are answered and counts the others.
type replyGuard struct {
	prefixes []string // "<prefix>." of every user; empty: any _INBOX token
	counter  *prometheus.CounterVec
	s        *Server
	lastLog  atomic.Int64
}

// guardReplies wraps svc so that every endpoint registered on it serves only requests with a
// reply subject in the inbox space.
func (s *Server) guardReplies(svc microsvc.Group) microsvc.Group {
	g := &replyGuard{s: s, counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "requests_unanswered_total",
		Help: "Requests not served because their reply subject was missing (not a request: a stream delivery, a plain publish) or outside the users' inboxes (an attempt to make the ledger publish elsewhere).",
	}, []string{"reason"})}
	for _, r := range []string{unansweredNoReply, unansweredOutsideInbox} {
		g.counter.WithLabelValues(r) // exported at 0 from the start
	}
	_ = s.observability().Registry().Register(g.counter)
	if s.cfg.Auth != nil {
		for _, p := range s.cfg.Auth.ClientInboxPrefixes() {
			g.prefixes = append(g.prefixes, p+".")
		}
		// An auditor's query arrives through the import of its account (authz.AuditAccount) with
		// a reply subject of the server's, which routes the answer back into that account.
		g.prefixes = append(g.prefixes, authz.ImportReplyPrefix+".")
	}
	return guardedGroup{Group: svc, g: g}
}

// inInboxes reports whether reply is a subject the responder answers on.
func (g *replyGuard) inInboxes(reply string) bool {
	if len(g.prefixes) > 0 {
		for _, p := range g.prefixes {
			if strings.HasPrefix(reply, p) && len(reply) > len(p) {
				return true
			}
		}
		return false
	}
	first, rest, ok := strings.Cut(reply, ".")
	return ok && rest != "" && (first == "_INBOX" || strings.HasPrefix(first, authz.InboxPrefixBase) || first == authz.ImportReplyPrefix) &&
		!strings.ContainsAny(reply, "*>")
}

func (g *replyGuard) wrap(h micro.Handler) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		reply := req.Reply()
		switch {
		case reply == "":
			g.refuse(req, unansweredNoReply)
		case !g.inInboxes(reply):
			g.refuse(req, unansweredOutsideInbox)
		default:
			h.Handle(req)
		}
	})
}

func (g *replyGuard) refuse(req micro.Request, reason string) {
	g.counter.WithLabelValues(reason).Inc()
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if now-last < int64(unansweredLogEvery) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	reply := req.Reply()
	if len(reply) > 128 {
		reply = reply[:128] + "..."
	}
	g.s.cfg.Log.Warn().Str("subject", req.Subject()).Str("reply", reply).Str("reason", reason).
		Msg("request not served: its reply subject is not a client inbox (counted in creditledger_requests_unanswered_total; logged at most every 10s)")
}

// guardedGroup puts the guard around every endpoint handler of a group (or of the service).
type guardedGroup struct {
	microsvc.Group
	g *replyGuard
}

func (gr guardedGroup) AddEndpoint(name string, h micro.Handler, opts ...microsvc.EndpointOpt) error {
	return gr.Group.AddEndpoint(name, gr.g.wrap(h), opts...)
}

func (gr guardedGroup) AddGroup(name string) microsvc.Group {
	return guardedGroup{Group: gr.Group.AddGroup(name), g: gr.g}
}
