package api

// EventRef names one appended event in a command reply.
type EventRef struct {
	Type     string `json:"type"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
}

// Accepted is the reply to a command whose events are durable.
type Accepted struct {
	OK        bool       `json:"ok"`
	AccountID string     `json:"account_id"`
	Version   uint64     `json:"version"`
	Position  uint64     `json:"position"`
	Events    []EventRef `json:"events"`
	// Replayed is true when the reply repeats the first outcome of the same command_id (the
	// Ledger-Replayed: true header); nothing was appended this time. It is not in the body.
	Replayed bool `json:"-"`
}

// ReplayedHeader is set to "true" on a reply that repeats an earlier outcome of the same
// command_id; the body is the first reply, unchanged.
const ReplayedHeader = "Ledger-Replayed"
