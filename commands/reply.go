package commands

import (
	"encoding/json"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/writer"
)

// Accepted is the reply to a command whose events are durable.
type Accepted struct {
	OK        bool              `json:"ok"`
	AccountID string            `json:"account_id"`
	Version   uint64            `json:"version"`
	Position  uint64            `json:"position"`
	Events    []writer.EventRef `json:"events"`
}

// Reply is either shape, as a client decodes it.
type Reply struct {
	OK        bool              `json:"ok"`
	AccountID string            `json:"account_id,omitempty"`
	Version   uint64            `json:"version,omitempty"`
	Position  uint64            `json:"position,omitempty"`
	Events    []writer.EventRef `json:"events,omitempty"`
	Error     *api.ErrorBody    `json:"error,omitempty"`
}

// AcceptedBody renders a successful result.
func AcceptedBody(r writer.Result) []byte {
	evs := r.Events
	if evs == nil {
		evs = []writer.EventRef{}
	}
	b, _ := json.Marshal(Accepted{OK: true, AccountID: r.AccountID, Version: r.Version, Position: r.Position, Events: evs})
	return b
}
