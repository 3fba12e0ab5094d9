package projections

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/internal/microsvc"
	"github.com/creditledger/creditledger/ledger"
)

// MaxConcurrentQueries bounds queries in progress per endpoint; a min_position query may wait,
// so each runs in its own goroutine instead of blocking the endpoint's subscription.
const MaxConcurrentQueries = 1024

// AccountQueries are the read models of one account, in the order the services register them.
var AccountQueries = []string{QueryBalance, QueryLicenses, QuerySwitches, QueryUsage, QueryAccount, QueryContracts}

// Register adds the query endpoints to the service: ledger.query.<name> for every name in
// AccountQueries and FleetQueries. Each query is answered from a goroutine of its own, after
// the handler has returned; svc (package microsvc) counts the answer in $SRV.STATS when it is
// sent, a rejection (not_found, invalid_argument, ...) as an error.
// ctx bounds the goroutines the handlers start.
func Register(ctx context.Context, svc microsvc.Group, q *Queries, log zerolog.Logger, opts ...RegisterOption) error {
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

// respondQuery answers a query: a rejection through micro's error reply (the text code in
// Nats-Service-Error-Code and in the body), so that $SRV.STATS counts it.
func respondQuery(req micro.Request, out any, err error, log zerolog.Logger) {
	var rerr error
	if err == nil {
		var b []byte
		if b, err = json.Marshal(out); err == nil {
			rerr = req.Respond(b)
		} else {
			err = ledger.Reject(ledger.CodeInternal, "encode answer: %v", err)
		}
	}
	if err != nil {
		le := api.AsError(err)
		desc := le.Message
		if desc == "" { // micro refuses an empty description
			desc = string(le.Code)
		}
		rerr = req.Error(string(le.Code), desc, api.RejectedBody(le))
	}
	if rerr != nil {
		log.Error().Err(rerr).Msg("respond to query")
	}
}
