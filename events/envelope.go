package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ZeroHash is the prev_hash of an account's first event: the start of its chain.
var ZeroHash = strings.Repeat("0", 64)

// Envelope is one stored message of the LEDGER stream, exactly as it is written.
type Envelope struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	AccountID     string          `json:"account_id"`
	Version       uint64          `json:"version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	CommandID     string          `json:"command_id"`
	CommandHash   string          `json:"command_hash,omitempty"`
	CorrelationID string          `json:"correlation_id"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
}

// canonical is the envelope without its hash, in a fixed field order: the bytes the hash covers.
type canonical struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	AccountID     string          `json:"account_id"`
	Version       uint64          `json:"version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	CommandID     string          `json:"command_id"`
	CommandHash   string          `json:"command_hash,omitempty"`
	CorrelationID string          `json:"correlation_id"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prev_hash"`
}

// ComputeHash returns the hex SHA-256 over the canonical encoding of the envelope without hash.
func (e *Envelope) ComputeHash() (string, error) {
	b, err := e.canonicalBytes()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (e *Envelope) canonicalBytes() ([]byte, error) {
	b, err := json.Marshal(canonical{
		EventID: e.EventID, Type: e.Type, SchemaVersion: e.SchemaVersion, AccountID: e.AccountID,
		Version: e.Version, OccurredAt: e.OccurredAt, CommandID: e.CommandID,
		CommandHash: e.CommandHash, CorrelationID: e.CorrelationID, Payload: e.Payload,
		PrevHash: e.PrevHash,
	})
	if err != nil {
		return nil, fmt.Errorf("canonical envelope: %w", err)
	}
	return b, nil
}

// SealEncode seals the envelope and returns its stored bytes in one pass: the stored form is the
// canonical form with "hash" appended as the last member (the field order of Envelope), so the
// envelope is marshalled once instead of twice on the command path. Encode gives the same bytes.
func (e *Envelope) SealEncode() ([]byte, error) {
	b, err := e.canonicalBytes()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	e.Hash = hex.EncodeToString(sum[:])
	out := make([]byte, 0, len(b)+len(e.Hash)+10)
	out = append(out, b[:len(b)-1]...) // drop the closing brace
	out = append(out, `,"hash":"`...)
	out = append(out, e.Hash...)
	return append(out, `"}`...), nil
}

// Seal sets the envelope's hash; PrevHash must already link it to the account's chain.
func (e *Envelope) Seal() error {
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// VerifyHash reports whether the stored hash matches the envelope's content.
func (e *Envelope) VerifyHash() bool {
	h, err := e.ComputeHash()
	return err == nil && h == e.Hash
}
