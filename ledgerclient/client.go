package ledgerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
)

// DefaultTimeout bounds one request when the context has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// ErrConfig is wrapped by every error of New and its options.
var ErrConfig = errors.New("ledgerclient: invalid configuration")

// Client sends commands and queries to a ledger over one NATS connection. It is safe for
// concurrent use.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
	newID   func() string
	retry   RetryPolicy
}

// Option configures a Client.
type Option func(*Client) error

// WithTimeout bounds each attempt of a request (DefaultTimeout when not set).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout must be positive", ErrConfig)
		}
		c.timeout = d
		return nil
	}
}

// WithCommandIDs sets the generator of the command ids of commands sent without one (a random
// UUID by default).
func WithCommandIDs(gen func() string) Option {
	return func(c *Client) error {
		if gen == nil {
			return fmt.Errorf("%w: nil command id generator", ErrConfig)
		}
		c.newID = gen
		return nil
	}
}

// New wraps a connection.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil connection", ErrConfig)
	}
	c := &Client{nc: nc, timeout: DefaultTimeout, newID: uuid.NewString, retry: RetryPolicy{Attempts: 1}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Result is the reply to an accepted command: the account's version and the stream position
// after it, the events it appended, Replayed when the ledger repeated the first reply of the same
// command_id (nothing appended this time), and the CommandID it was sent with.
type Result struct {
	api.Accepted
	CommandID string
}

// Send sends the command name with req, filling in an empty CommandID (on req itself, so the
// caller sees the id used). A rejection is a *Error.
func (c *Client) Send(ctx context.Context, name string, req commands.Request) (Result, error) {
	if req == nil {
		return Result{}, fmt.Errorf("%w: nil request", ErrConfig)
	}
	m := req.RequestMeta()
	if m.CommandID == "" {
		m.CommandID = c.newID()
	}
	data, err := json.Marshal(req)
	if err != nil {
		return Result{}, fmt.Errorf("encode %s: %w", name, err)
	}
	res := Result{CommandID: m.CommandID}
	err = c.do(ctx, commands.Subject(name), data, func(msg *nats.Msg) error {
		if err := json.Unmarshal(msg.Data, &res.Accepted); err != nil {
			return fmt.Errorf("decode reply of %s: %w", name, err)
		}
		res.Replayed = msg.Header.Get(api.ReplayedHeader) == "true"
		return nil
	})
	if err != nil {
		return Result{CommandID: m.CommandID}, err
	}
	return res, nil
}

// do sends one request, retrying as the policy allows (the same bytes each time, so a command
// keeps its command_id), and hands the accepted reply to decode.
func (c *Client) do(ctx context.Context, subject string, data []byte, decode func(*nats.Msg) error) error {
	return c.retry.run(ctx, func(ctx context.Context) error {
		msg, err := c.request(ctx, subject, data)
		if err != nil {
			return err
		}
		return decode(msg)
	})
}

// request is one attempt: a reply that is a rejection becomes a *Error.
func (c *Client) request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(actx, subject, data)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", subject, err)
	}
	var r struct {
		OK    bool           `json:"ok"`
		Error *api.ErrorBody `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	if r.Error != nil {
		return nil, &ledger.Error{Code: r.Error.Code, Message: r.Error.Message, Data: r.Error.Data}
	}
	if !r.OK {
		return nil, fmt.Errorf("reply of %s: not ok and no error", subject)
	}
	return msg, nil
}
