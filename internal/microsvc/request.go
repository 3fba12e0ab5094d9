package microsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// ErrAnswered is returned by a second answer to one request: a request is answered, and
// counted, once.
var ErrAnswered = errors.New("microsvc: request already answered")

// request is the micro.Request an endpoint's handler gets. Respond, RespondJSON and Error may
// be called from any goroutine, after the handler has returned; the first of them answers and
// records the outcome in the endpoint's stats.
type request struct {
	msg      *nats.Msg
	ep       *endpoint
	start    time.Time
	answered atomic.Bool
}

var _ micro.Request = (*request)(nil)

// Respond sends response, with the headers of any micro.WithHeaders option.
func (r *request) Respond(response []byte, opts ...micro.RespondOpt) error {
	m := &nats.Msg{Data: response}
	for _, opt := range opts {
		opt(m)
	}
	return r.send(m, "")
}

// RespondJSON sends response encoded as JSON.
func (r *request) RespondJSON(response any, opts ...micro.RespondOpt) error {
	b, err := json.Marshal(response)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return r.Respond(b, opts...)
}

// Error sends an error answer: the micro error headers (code and description, both required)
// and data as the body. It counts in the endpoint's num_errors, with last_error "code:description"
// as micro writes it.
func (r *request) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	if code == "" {
		return fmt.Errorf("%w: error code", micro.ErrArgRequired)
	}
	if description == "" {
		return fmt.Errorf("%w: description", micro.ErrArgRequired)
	}
	m := &nats.Msg{Header: nats.Header{micro.ErrorHeader: {description}, micro.ErrorCodeHeader: {code}}}
	for _, opt := range opts {
		opt(m)
	}
	m.Data = data
	return r.send(m, code+":"+description)
}

// send answers once and records the outcome: serviceErr for an error answer, the send error
// when the answer could not be sent. The outcome is recorded before the answer goes out, so a
// requester that has its answer finds it counted in the next $SRV.STATS.
func (r *request) send(m *nats.Msg, serviceErr string) error {
	if !r.answered.CompareAndSwap(false, true) {
		return ErrAnswered
	}
	r.ep.answered(time.Since(r.start), serviceErr)
	if err := r.msg.RespondMsg(m); err != nil {
		err = fmt.Errorf("%w: %w", micro.ErrRespond, err)
		r.ep.notSent(serviceErr != "", err.Error())
		return err
	}
	return nil
}

// Data is the request's body.
func (r *request) Data() []byte { return r.msg.Data }

// Headers are the request's headers.
func (r *request) Headers() micro.Headers { return micro.Headers(r.msg.Header) }

// Subject is the subject the request was sent to.
func (r *request) Subject() string { return r.msg.Subject }

// Reply is the request's reply subject.
func (r *request) Reply() string { return r.msg.Reply }
