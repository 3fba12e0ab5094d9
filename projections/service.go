package projections

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// MaxConcurrentQueries bounds queries in progress per endpoint; a min_position query may wait,
// so each runs in its own goroutine instead of blocking the endpoint's subscription.
const MaxConcurrentQueries = 1024

// AccountQueries are the read models of one account, in the order the services register them.
var AccountQueries = []string{QueryBalance, QueryLicenses, QuerySwitches, QueryUsage, QueryAccount, QueryContracts}

// Register adds the query endpoints to the service: ledger.query.<name> for every name in
// AccountQueries and FleetQueries.
// ctx bounds the goroutines the handlers start.
func Register(ctx context.Context, svc micro.Service, q *Queries, log zerolog.Logger, opts ...RegisterOption) error {
	if svc == nil || q == nil {
		return errors.New("projections: nil service or queries")
	}
	o, err := newRegisterOptions(opts) // options: observe.go
	if err != nil {
		return err
	}
	g := svc.AddGroup(QuerySubjectPrefix)
	for _, name := range append(append([]string(nil), AccountQueries...), FleetQueries...) {
		sem := make(chan struct{}, MaxConcurrentQueries)
		if err := g.AddEndpoint(name, queryHandler(ctx, name, q, sem, log, o.observer)); err != nil {
			return err
		}
	}
	return nil
}

func queryHandler(ctx context.Context, name string, q *Queries, sem chan struct{}, log zerolog.Logger, obs QueryObserver) micro.HandlerFunc {
	return func(req micro.Request) {
		start := time.Now()
		select {
		case sem <- struct{}{}:
		default:
			respondQuery(req, nil, ledger.Reject(ledger.CodeUnavailable, "too many queries in progress"), log)
			return
		}
		go func() {
			defer func() { <-sem }()
			r, err := DecodeRequest(req.Data())
			var out any
			if err == nil {
				out, err = q.Answer(ctx, name, r)
			}
			respondQuery(req, out, err, log)
			observeQuery(obs, name, err, start)
		}()
	}
}

func respondQuery(req micro.Request, out any, err error, log zerolog.Logger) {
	if err != nil {
		le := api.AsError(err)
		if rerr := req.Respond(api.RejectedBody(le), micro.WithHeaders(api.ErrorHeaders(le))); rerr != nil {
			log.Error().Err(rerr).Msg("respond to query")
		}
		return
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		le := ledger.Reject(ledger.CodeInternal, "encode answer: %v", merr)
		_ = req.Respond(api.RejectedBody(le), micro.WithHeaders(api.ErrorHeaders(le)))
		return
	}
	if rerr := req.Respond(b); rerr != nil {
		log.Error().Err(rerr).Msg("respond to query")
	}
}
