package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
)

// In a cluster every account's partition is written by one node (the holder of its lease). A
// command may arrive at any node on the public subject ledger.cmd.<name>; a node that does not
// own the account passes the request's body (not its headers) to the owner on the internal
// subject OwnerSubject(partition, name), which only the owner subscribes to, and relays its reply.
const (
	// OwnerSubjectPrefix is the internal subject prefix of commands passed to a partition's owner.
	OwnerSubjectPrefix = "ledger.owner"
	// NotOwnerHeader is set on a reply from a node that received a command on the internal
	// subject but does not own the partition (any more): the sender tries again.
	NotOwnerHeader = "Ledger-Not-Owner"
	// DefaultForwardWait bounds how long a request waits for its partition to have an owner
	// (a takeover after a node died waits out the lease TTL) before it is answered unavailable.
	DefaultForwardWait = 10 * time.Second
	// DefaultForwardLimit bounds the commands a node is passing to their owners at once: each
	// holds a goroutine, during a takeover for up to the forward wait. More are answered
	// unavailable at once.
	DefaultForwardLimit = 4096
)

// OwnerSubject is the internal subject of command name for partition p.
func OwnerSubject(p int, name string) string {
	return fmt.Sprintf("%s.%d.%s", OwnerSubjectPrefix, p, name)
}

// Router tells the command service which node decides an account.
type Router interface {
	// Partition is the account's partition.
	Partition(accountID string) int
	// Local reports whether this node decides the account's commands now.
	Local(accountID string) bool
}

// forwarder passes requests to partition owners.
type forwarder struct {
	router Router
	nc     *nats.Conn
	wait   time.Duration
	// slots bounds the forwards in flight: one is taken before a forward's goroutine starts and
	// given back once its reply is sent.
	slots chan struct{}
}

// RouteOption adjusts how the service passes commands to partition owners.
type RouteOption func(*routeOptions) error

type routeOptions struct{ limit int }

// WithForwardLimit bounds the commands this node passes to their owners at once (default
// DefaultForwardLimit); a command past the bound is answered unavailable at once.
func WithForwardLimit(n int) RouteOption {
	return func(o *routeOptions) error {
		if n <= 0 {
			return errors.New("commands service: the forward limit must be positive")
		}
		o.limit = n
		return nil
	}
}

// Route makes the service pass commands on accounts this node does not own to their owner, on
// nc, waiting at most wait for an owner; call it before Register and ServeOwner.
func (s *Service) Route(r Router, nc *nats.Conn, wait time.Duration, opts ...RouteOption) error {
	if r == nil || nc == nil {
		return errors.New("commands service: nil router or connection")
	}
	if wait <= 0 {
		wait = DefaultForwardWait
	}
	o := routeOptions{limit: DefaultForwardLimit}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return err
		}
	}
	s.fwd = &forwarder{router: r, nc: nc, wait: wait, slots: make(chan struct{}, o.limit)}
	return nil
}

// Forwarding is the number of commands this node is passing to their owners now.
func (s *Service) Forwarding() int {
	if s.fwd == nil {
		return 0
	}
	return len(s.fwd.slots)
}

// forwardsPoll is how often AwaitForwards looks at the forwards still in flight.
const forwardsPoll = 10 * time.Millisecond

// AwaitForwards returns once no command is being passed to its owner by this node, or when ctx
// ends (false), and at the latest once the forward wait is over (every forward answers by then):
// a stopping node keeps its connection open until the commands it passed on are answered (its
// own partitions' included, which their next owner decides a tick after the hand-over).
func (s *Service) AwaitForwards(ctx context.Context) bool {
	if s.fwd == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, s.fwd.wait+time.Second)
	defer cancel()
	t := time.NewTicker(forwardsPoll)
	defer t.Stop()
	for s.Forwarding() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// startForward passes the request to its owner on a goroutine of its own, holding a slot until
// the reply is sent; with every slot taken it answers unavailable at once instead.
func (s *Service) startForward(req micro.Request, name, commandID, accountID string, start time.Time) {
	select {
	case s.fwd.slots <- struct{}{}:
	default:
		e := ledger.Reject(ledger.CodeUnavailable, "this node is busy forwarding: %d commands are waiting for their partitions' owners, "+
			"the most it holds; retry with the same command_id", cap(s.fwd.slots))
		e.Data = map[string]string{api.RetryAfterData: "1"}
		s.reject(req, name, commandID, accountID, e, start)
		return
	}
	go func() {
		defer func() { <-s.fwd.slots }()
		s.forward(req, name, commandID, accountID, start)
	}()
}

// forwardPause is the pause between attempts while a partition has no owner (bounded by wait).
const forwardPause = 50 * time.Millisecond

// forwardAttempt bounds one attempt to pass a command to its owner. A request sent just as its
// owner dies (kill -9: its interest still known here for a moment) is lost with it and never
// answered; it is sent again, to whoever owns the partition by then, instead of waiting out the
// whole wait for that lost one. A command sent twice is decided once (its command_id).
const forwardAttempt = 2 * time.Second

// forward sends the request to the owner of its account and relays the reply; while no node
// owns the partition (a takeover), it tries again until the wait is over, then answers
// unavailable. It runs on its own goroutine (startForward).
func (s *Service) forward(req micro.Request, name, commandID, accountID string, start time.Time) {
	f := s.fwd
	ctx, cancel := context.WithTimeout(context.Background(), f.wait)
	defer cancel()
	subject := OwnerSubject(f.router.Partition(accountID), name)
	for {
		// The body only: the owner decides from it and reads no header, and the server acts on
		// some headers of a message (Nats-Trace-Dest: where to publish trace events) checking the
		// publisher's permissions, here the responder's. A requester's trace destination, one it
		// may publish to, is one the responder may not: the server dropped every forward of the
		// request, which then waited out the whole wait holding a forward slot.
		m := &nats.Msg{Subject: subject, Data: req.Data()}
		actx, acancel := context.WithTimeout(ctx, forwardAttempt)
		resp, err := f.nc.RequestMsgWithContext(actx, m)
		acancel()
		if err == nil && resp.Header.Get(NotOwnerHeader) == "" {
			s.relay(req, name, commandID, accountID, resp, start)
			return
		}
		if err != nil && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn().Err(err).Str("subject", subject).Msg("passing a command to its partition's owner")
		}
		select {
		case <-ctx.Done():
			s.respond(req, name, commandID, submit.Result{AccountID: accountID, Err: ledger.Reject(ledger.CodeUnavailable,
				"no node owns the partition of account %s (a takeover in progress?); retry with the same command_id", accountID)}, start)
			return
		case <-time.After(forwardPause):
		}
	}
}

// relay sends the owner's reply back unchanged (body and headers); a rejection goes through
// micro's error reply, so that this node's $SRV.STATS counts it like its own.
func (s *Service) relay(req micro.Request, name, commandID, accountID string, resp *nats.Msg, start time.Time) {
	hdr := micro.Headers{}
	for k, v := range resp.Header {
		hdr[k] = v
	}
	res := submit.Result{AccountID: accountID}
	var err error
	if c := resp.Header.Get(micro.ErrorCodeHeader); c != "" {
		res.Err = &ledger.Error{Code: ledger.Code(c), Message: resp.Header.Get(micro.ErrorHeader)}
		s.rejs.add(req.Subject(), res.Err) // before the answer, as respond does
		err = req.Error(c, errorDescription(res.Err), resp.Data, micro.WithHeaders(hdr))
	} else {
		err = req.Respond(resp.Data, micro.WithHeaders(hdr))
	}
	s.finish(name, commandID, res, start, err)
}

// ServeOwner subscribes this node to the internal subjects of partition p: commands passed by
// other nodes are decided here, or answered with NotOwnerHeader when this node does not own the
// partition (any more). The caller unsubscribes when it gives the partition up.
func (s *Service) ServeOwner(nc *nats.Conn, p int, local Router) (*nats.Subscription, error) {
	prefix := fmt.Sprintf("%s.%d.", OwnerSubjectPrefix, p)
	inbox := nc.Opts.InboxPrefix
	if inbox == "" {
		inbox = nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	return nc.Subscribe(prefix+"*", func(m *nats.Msg) {
		if !strings.HasPrefix(m.Reply, inbox+".") {
			return // only another node's forwarder (same identity, same inbox prefix) asks here
		}
		name := m.Subject[len(prefix):]
		req := &msgRequest{m: m}
		if !isCommand(name) {
			_ = req.Error("400", "unknown command", nil)
			return
		}
		s.handle(req, name, local, true)
	})
}

func isCommand(name string) bool {
	for _, n := range commands.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// notOwned answers a request received on the internal subject by a node that does not own it.
func notOwned(req micro.Request) {
	body := api.RejectedBody(ledger.Reject(ledger.CodeUnavailable, "not the partition's owner"))
	_ = req.Respond(body, micro.WithHeaders(micro.Headers{NotOwnerHeader: []string{"true"}}))
}

// msgRequest is a micro.Request over a plain subscription's message (the internal subjects are
// not endpoints of the public service: $SRV discovery lists only ledger.cmd.*).
type msgRequest struct{ m *nats.Msg }

func (r *msgRequest) Respond(data []byte, opts ...micro.RespondOpt) error {
	resp := &nats.Msg{Data: data, Header: nats.Header{}}
	for _, o := range opts {
		o(resp)
	}
	return r.m.RespondMsg(resp)
}

func (r *msgRequest) RespondJSON(any, ...micro.RespondOpt) error {
	return errors.New("commands service: RespondJSON is not used on internal subjects")
}

func (r *msgRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	resp := &nats.Msg{Data: data, Header: nats.Header{micro.ErrorHeader: []string{description}, micro.ErrorCodeHeader: []string{code}}}
	for _, o := range opts {
		o(resp)
	}
	return r.m.RespondMsg(resp)
}

func (r *msgRequest) Data() []byte           { return r.m.Data }
func (r *msgRequest) Headers() micro.Headers { return micro.Headers(r.m.Header) }
func (r *msgRequest) Subject() string        { return r.m.Subject }
func (r *msgRequest) Reply() string          { return r.m.Reply }
