package service

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/internal/microsvc"
	"github.com/creditledger/creditledger/ledger"
)

// Submitter decides commands (the writer): the port the command service hands each parsed
// command to. Submit must not block; r.Reply is called exactly once when Submit returns nil, and
// never when it returns an error (the service then answers unavailable).
type Submitter interface {
	Submit(r submit.Request) error
}

// Service answers the command endpoints.
type Service struct {
	w    Submitter
	log  zerolog.Logger
	obs  commands.Observer
	rejs rejections
	// fwd passes commands on accounts this node does not own to their owner (route.go).
	fwd *forwarder
}

// New builds the command service; Register adds its endpoints to a micro service.
func New(w Submitter, log zerolog.Logger, opts ...commands.Option) (*Service, error) {
	if w == nil {
		return nil, errors.New("commands service: nil writer")
	}
	o, err := commands.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Service{w: w, log: log, obs: o.Observer, rejs: rejections{by: map[string]*rejectionStats{}}}, nil
}

// Register builds the command service and adds its endpoints to svc.
func Register(svc microsvc.Group, w Submitter, log zerolog.Logger, opts ...commands.Option) error {
	s, err := New(w, log, opts...)
	if err != nil {
		return err
	}
	return s.Register(svc)
}

// Register adds one endpoint per command to svc, each with its metadata (Metadata). Handlers
// never wait: they hand the request to the writer, which replies from its own goroutine; svc
// (package microsvc) counts the answer in $SRV.STATS when it is sent.
func (s *Service) Register(svc microsvc.Group) error {
	if svc == nil {
		return errors.New("commands service: nil micro service")
	}
	g := svc.AddGroup(commands.SubjectPrefix)
	for _, name := range commands.Names() {
		if err := g.AddEndpoint(name, s.handler(name), microsvc.WithEndpointMetadata(Metadata(name))); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) handler(name string) micro.HandlerFunc {
	return func(req micro.Request) {
		var router Router
		if s.fwd != nil {
			router = s.fwd.router
		}
		s.handle(req, name, router, false)
	}
}

// handle parses a request and hands it to the writer or, for an account this node does not own
// (router says so), to the account's owner (route.go). internal is true on the owner's internal
// subject, where a request this node does not own is answered NotOwnerHeader, never passed on.
func (s *Service) handle(req micro.Request, name string, router Router, internal bool) {
	start := time.Now()
	p, err := commands.Parse(name, req.Data())
	if err != nil {
		s.reject(req, name, "", "", api.AsError(err), start)
		return
	}
	forward := func() {
		if internal || s.fwd == nil {
			notOwned(req)
			return
		}
		s.startForward(req, name, p.CommandID, p.AccountID, start) // off the caller's goroutine, bounded
	}
	if router != nil && !router.Local(p.AccountID) {
		forward()
		return
	}
	r := submit.Request{
		CommandID: p.CommandID, AccountID: p.AccountID, CorrelationID: p.CorrelationID,
		BodyHash: p.BodyHash, ExpectedVersion: p.ExpectedVersion, Command: p.Command,
	}
	if r.CorrelationID == "" {
		r.CorrelationID = p.CommandID
	}
	r.Reply = func(res submit.Result) {
		if res.Redirect && (internal || s.fwd != nil) {
			forward()
			return
		}
		s.respond(req, name, p.CommandID, res, start)
	}
	if err := s.w.Submit(r); err != nil {
		s.reject(req, name, p.CommandID, p.AccountID,
			ledger.Reject(ledger.CodeUnavailable, "ledger is overloaded or stopping; retry with the same command_id"), start)
	}
}

// reject answers on the handler's goroutine through micro's error reply, so $SRV.STATS counts it
// (num_errors, last_error). The body is the ledger's rejection; the code header carries the
// text code.
func (s *Service) reject(req micro.Request, name, commandID, accountID string, e *ledger.Error, start time.Time) {
	err := req.Error(string(e.Code), errorDescription(e), api.RejectedBody(e))
	s.finish(name, commandID, submit.Result{AccountID: accountID, Err: e}, start, err)
}

// respond sends the writer's reply. It runs on the writer's goroutine, after the handler has
// returned; the request is a microsvc one, so a rejection sent here through micro's error reply
// counts in $SRV.STATS (num_errors, last_error) like the handler's own. The endpoint's STATS
// data also counts the writer's rejections by code (EndpointStats).
func (s *Service) respond(req micro.Request, name, commandID string, res submit.Result, start time.Time) {
	var err error
	if res.Err != nil {
		var opts []micro.RespondOpt
		if res.Replayed {
			opts = append(opts, micro.WithHeaders(micro.Headers{commands.ReplayedHeader: []string{"true"}}))
		}
		s.rejs.add(req.Subject(), res.Err) // before the answer: a requester that has it finds it counted
		err = req.Error(string(res.Err.Code), errorDescription(res.Err), api.RejectedBody(res.Err), opts...)
	} else {
		var opts []micro.RespondOpt
		if res.Replayed {
			opts = append(opts, micro.WithHeaders(micro.Headers{commands.ReplayedHeader: []string{"true"}}))
		}
		err = req.Respond(acceptedBody(res), opts...)
	}
	s.finish(name, commandID, res, start, err)
}

// errorDescription is the micro error description: the message, or the code when the message is
// empty (micro refuses an empty description).
func errorDescription(e *ledger.Error) string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// finish counts the command and logs it. The per-command line is at debug: at info a busy ledger
// wrote one line per command on the path that answers it. What an operator must see is logged
// at info and above: internal errors and broken history, unavailable answers, replies that could
// not be sent.
func (s *Service) finish(name, commandID string, res submit.Result, start time.Time, respondErr error) {
	latency := time.Since(start)
	if s.obs != nil {
		code := "ok"
		if res.Err != nil {
			code = string(res.Err.Code)
		}
		s.obs.ObserveCommand(name, code, latency)
	}
	var ev *zerolog.Event
	switch {
	case respondErr != nil && !errors.Is(respondErr, nats.ErrConnectionClosed):
		ev = s.log.Error().AnErr("respond_error", respondErr)
	case res.Err != nil && (res.Err.Code == ledger.CodeInternal || res.Err.Code == ledger.CodeHistoryBroken):
		ev = s.log.Error().Str("reason", res.Err.Message)
	case res.Err != nil && res.Err.Code == ledger.CodeUnavailable:
		ev = s.log.Warn().Str("reason", res.Err.Message)
	default:
		ev = s.log.Debug()
	}
	if ev == nil { // level disabled: nothing to format
		return
	}
	if res.Err != nil {
		ev = ev.Str("code", string(res.Err.Code))
	} else {
		ev = ev.Uint64("version", res.Version).Uint64("position", res.Position).Bool("replayed", res.Replayed)
	}
	ev.Str("command", name).Str("command_id", commandID).Str("account_id", res.AccountID).
		Str("latency_us", strconv.FormatInt(latency.Microseconds(), 10)).Msg("command")
}

// acceptedBody renders a successful result.
func acceptedBody(r submit.Result) []byte {
	evs := r.Events
	if evs == nil {
		evs = []api.EventRef{}
	}
	b, _ := json.Marshal(api.Accepted{OK: true, AccountID: r.AccountID, Version: r.Version, Position: r.Position, Events: evs})
	return b
}

// rejections counts the rejections the writer answered, per endpoint subject.
type rejections struct {
	mu sync.Mutex
	by map[string]*rejectionStats
}

// rejectionStats is the STATS data of a command endpoint.
type rejectionStats struct {
	// Rejections the writer answered (business rules, conflicts, replays of a rejection); these
	// and the ones answered by the handler itself (invalid_argument, overload) are num_errors.
	Rejections    uint64            `json:"rejections"`
	LastRejection string            `json:"last_rejection,omitempty"`
	ByCode        map[string]uint64 `json:"by_code,omitempty"`
}

func (r *rejections) add(subject string, e *ledger.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.by[subject]
	if st == nil {
		st = &rejectionStats{ByCode: map[string]uint64{}}
		r.by[subject] = st
	}
	st.Rejections++
	st.ByCode[string(e.Code)]++
	st.LastRejection = string(e.Code) + ":" + errorDescription(e)
}

// EndpointStats is a microsvc.Config StatsHandler: the data of a command endpoint in $SRV.STATS
// is its writer-answered rejections by code (rejectionStats); other endpoints get none.
func (s *Service) EndpointStats(e micro.EndpointInfo) any {
	if !strings.HasPrefix(e.Subject, commands.SubjectPrefix+".") {
		return nil
	}
	s.rejs.mu.Lock()
	defer s.rejs.mu.Unlock()
	st := s.rejs.by[e.Subject]
	if st == nil {
		return rejectionStats{}
	}
	out := *st
	out.ByCode = make(map[string]uint64, len(st.ByCode))
	for k, v := range st.ByCode {
		out.ByCode[k] = v
	}
	return out
}
