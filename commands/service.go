package commands

import (
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// Service identity and subjects; outside clients rely on them.
const (
	ServiceName    = "creditledger"
	ServiceVersion = "0.1.0"
	SubjectPrefix  = "ledger.cmd"
	// ReplayedHeader is set to "true" on a reply that repeats an earlier outcome of the same
	// command_id; the body is the first reply, unchanged.
	ReplayedHeader = "Ledger-Replayed"
)

// Subject is the request subject of a command.
func Subject(name string) string { return SubjectPrefix + "." + name }

// Submitter is the part of the writer the command service needs.
type Submitter interface {
	Submit(*writer.Request) error
}

// Register adds one endpoint per command to the micro service. Handlers never wait: they hand
// the request to the writer, which replies from its own goroutine once the events are durable.
func Register(svc micro.Service, w Submitter, log zerolog.Logger, opts ...Option) error {
	if svc == nil || w == nil {
		return errors.New("commands: nil service or writer")
	}
	o, err := newOptions(opts) // options: observe.go
	if err != nil {
		return err
	}
	g := svc.AddGroup(SubjectPrefix)
	for _, name := range Names() {
		if err := g.AddEndpoint(name, handler(name, w, log, o.observer), micro.WithEndpointMetadata(map[string]string{
			"description": "command " + name,
		})); err != nil {
			return err
		}
	}
	return nil
}

func handler(name string, w Submitter, log zerolog.Logger, obs Observer) micro.HandlerFunc {
	return func(req micro.Request) {
		start := time.Now()
		p, err := Parse(name, req.Data())
		if err != nil {
			respond(req, name, "", writer.Result{Err: api.AsError(err)}, start, log, obs)
			return
		}
		r := &writer.Request{
			CommandID: p.CommandID, AccountID: p.AccountID, CorrelationID: p.CorrelationID,
			BodyHash: p.BodyHash, ExpectedVersion: p.ExpectedVersion, Command: p.Command,
		}
		if r.CorrelationID == "" {
			r.CorrelationID = p.CommandID
		}
		r.Reply = func(res writer.Result) { respond(req, name, p.CommandID, res, start, log, obs) }
		if err := w.Submit(r); err != nil {
			respond(req, name, p.CommandID, writer.Result{AccountID: p.AccountID,
				Err: ledger.Reject(ledger.CodeUnavailable, "ledger is overloaded or stopping; retry with the same command_id")}, start, log, obs)
		}
	}
}

// respond sends the reply and logs one line per outcome.
func respond(req micro.Request, name, commandID string, res writer.Result, start time.Time, log zerolog.Logger, obs Observer) {
	defer observe(obs, name, res, start)
	var err error
	ev := log.Info()
	if res.Err != nil {
		ev = log.Info().Str("code", string(res.Err.Code))
		if res.Err.Code == ledger.CodeInternal || res.Err.Code == ledger.CodeUnavailable || res.Err.Code == ledger.CodeHistoryBroken {
			ev = log.Error().Str("code", string(res.Err.Code)).Str("reason", res.Err.Message)
		}
		hdr := api.ErrorHeaders(res.Err)
		if res.Replayed {
			hdr[ReplayedHeader] = []string{"true"}
		}
		err = req.Respond(api.RejectedBody(res.Err), micro.WithHeaders(hdr))
	} else {
		var opts []micro.RespondOpt
		if res.Replayed {
			opts = append(opts, micro.WithHeaders(micro.Headers{ReplayedHeader: []string{"true"}}))
		}
		err = req.Respond(AcceptedBody(res), opts...)
		ev = ev.Uint64("version", res.Version).Uint64("position", res.Position).Bool("replayed", res.Replayed)
	}
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		ev = log.Error().AnErr("respond_error", err)
	}
	ev.Str("command", name).Str("command_id", commandID).Str("account_id", res.AccountID).
		Str("latency_us", strconv.FormatInt(time.Since(start).Microseconds(), 10)).Msg("command")
}
