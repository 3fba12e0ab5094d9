package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Chain statuses of one stored event, as GET /v1/accounts/{id}/log reports them.
const (
	ChainOK = "ok"
	// ChainHashMismatch: the stored hash does not match the event's content (it was altered).
	ChainHashMismatch = "hash_mismatch"
	// ChainBrokenLink: prev_hash is not the hash of the account's previous event (zero for the
	// first): an event before it was altered or removed, or this one was inserted.
	ChainBrokenLink = "broken_link"
	// ChainVersionGap: the version does not follow the previous event's.
	ChainVersionGap = "version_gap"
	// ChainUndecodable: the stored bytes are not an event envelope.
	ChainUndecodable = "undecodable"
)

// LogEntry is one stored event of an account and the result of checking it against its chain.
type LogEntry struct {
	Position   uint64    `json:"position"`
	Version    uint64    `json:"version"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	CommandID  string    `json:"command_id"`
	Hash       string    `json:"hash"`
	PrevHash   string    `json:"prev_hash"`
	Chain      string    `json:"chain"`
	Reason     string    `json:"reason,omitempty"`
}

// EventLog is an account's stored events, oldest first, each with its hash-chain status.
type EventLog struct {
	OK        bool   `json:"ok"`
	AccountID string `json:"account_id"`
	Position  uint64 `json:"position"`
	// ChainOK says every event of the account checked out (not only those returned).
	ChainOK bool `json:"chain_ok"`
	// Broken counts the events whose chain status is not ok.
	Broken    int        `json:"broken"`
	Truncated bool       `json:"truncated,omitempty"`
	AsOf      *time.Time `json:"as_of,omitempty"`
	Events    []LogEntry `json:"events"`
}

// CheckChain checks an account's stored events, in stream order, the way `audit verify` checks
// one chain: each hash recomputed, each prev_hash against the previous event's stored hash (the
// zero hash first), versions 1, 2, 3 ... With asOf set it stops at the first event after it.
func CheckChain(accountID string, recs []ledger.Record, asOf *time.Time) EventLog {
	out := EventLog{OK: true, AccountID: accountID, AsOf: asOf, ChainOK: true, Events: make([]LogEntry, 0, len(recs))}
	prev, version := events.ZeroHash, uint64(0)
	for _, rec := range recs {
		var env events.Envelope
		e := LogEntry{Position: rec.Position, Chain: ChainOK}
		if err := json.Unmarshal(rec.Data, &env); err != nil {
			e.Chain, e.Reason = ChainUndecodable, err.Error()
		} else {
			if asOf != nil && env.OccurredAt.After(*asOf) {
				break
			}
			e.Version, e.Type, e.OccurredAt, e.CommandID = env.Version, env.Type, env.OccurredAt.UTC(), env.CommandID
			e.Hash, e.PrevHash = env.Hash, env.PrevHash
			e.Chain, e.Reason = chainStatus(rec.Data, env, accountID, prev, version)
			prev, version = env.Hash, env.Version
		}
		if e.Chain != ChainOK {
			out.ChainOK = false
			out.Broken++
		}
		out.Events = append(out.Events, e)
		out.Position = rec.Position
	}
	if n := len(out.Events); n > MaxHistoryPoints {
		out.Events = append([]LogEntry(nil), out.Events[n-MaxHistoryPoints:]...)
		out.Truncated = true
	}
	return out
}

// chainStatus checks one stored event; the hash is recomputed from the stored bytes under the
// rule the envelope names (events.StoredHash), as audit verify does.
func chainStatus(data []byte, env events.Envelope, accountID, prev string, version uint64) (string, string) {
	computed, err := events.StoredHash(data, &env)
	switch {
	case err != nil:
		return ChainHashMismatch, fmt.Sprintf("the stored hash cannot be recomputed: %v", err)
	case computed != env.Hash:
		return ChainHashMismatch, "the stored hash does not match the event's content"
	case env.PrevHash != prev:
		return ChainBrokenLink, fmt.Sprintf("prev_hash is not the hash of version %d", version)
	case env.AccountID != accountID || env.Version != version+1:
		return ChainVersionGap, fmt.Sprintf("%s version %d does not follow version %d", env.AccountID, env.Version, version)
	}
	return ChainOK, ""
}

func (d *Dashboard) serveLog(w http.ResponseWriter, r *http.Request) {
	req, recs, ok := d.accountEvents(w, r)
	if !ok {
		return
	}
	writeJSON(w, CheckChain(req.accountID, recs, req.asOf))
}

// waitFor waits for the projector to reach position (0: no wait), so what a route reads from the
// stream agrees with the read models fetched beside it.
func (d *Dashboard) waitFor(ctx context.Context, position uint64) error {
	if position == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, d.maxWait)
	defer cancel()
	if err := d.proj.WaitFor(wctx, position); err != nil {
		return ledger.Reject(ledger.CodeUnavailable, "projection is at position %d and did not reach %d within %s",
			d.proj.Position(), position, d.maxWait)
	}
	return nil
}
