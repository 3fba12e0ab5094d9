package commands

import (
	"github.com/creditledger/creditledger/api"
)

// Accepted is the reply to a command whose events are durable (the wire type lives in api).
type Accepted = api.Accepted

// Reply is either shape, as a client decodes it.
type Reply struct {
	OK        bool           `json:"ok"`
	AccountID string         `json:"account_id,omitempty"`
	Version   uint64         `json:"version,omitempty"`
	Position  uint64         `json:"position,omitempty"`
	Events    []api.EventRef `json:"events,omitempty"`
	Error     *api.ErrorBody `json:"error,omitempty"`
}
