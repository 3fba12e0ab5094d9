package events

import (
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
	// HashRule names the rule that made Hash (HashRuleJCS); absent on events written before it
	// existed (HashRuleLegacy). It is covered by the hash it names.
	HashRule string `json:"hash_rule,omitempty"`
	Hash     string `json:"hash"`
}

// ComputeHash returns the hex SHA-256 of the envelope without hash under the rule HashRule
// names. For an envelope decoded from stored bytes, StoredHash is the auditor's form: under
// HashRuleJCS it hashes the stored bytes themselves.
func (e *Envelope) ComputeHash() (string, error) {
	b, err := e.hashedBytes(nil)
	if err != nil {
		return "", err
	}
	return hexSum(b), nil
}

// hashedBytes appends the bytes the envelope's hash rule hashes.
func (e *Envelope) hashedBytes(dst []byte) ([]byte, error) {
	switch e.HashRule {
	case HashRuleLegacy:
		return e.legacyBytes()
	case HashRuleJCS:
		return e.canonicalJCS(dst, false)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownHashRule, e.HashRule)
	}
}

// SealEncode seals the envelope under CurrentHashRule and returns its stored bytes in one pass:
// the stored form is the canonical form with "hash" appended as the last member, so the
// envelope is encoded once on the command path. Encode gives the same bytes. Like Seal, it
// replaces the payload with its RFC 8785 form, which is what is stored.
func (e *Envelope) SealEncode() ([]byte, error) {
	b, err := e.seal(make([]byte, 0, 320+len(e.Payload)))
	if err != nil {
		return nil, err
	}
	return appendHash(b, e.Hash), nil
}

// seal canonicalizes the payload, sets HashRule and Hash, and returns the hashed bytes.
func (e *Envelope) seal(dst []byte) ([]byte, error) {
	p, err := canonicalPayload(e.Payload)
	if err != nil {
		return nil, err
	}
	e.Payload, e.HashRule = p, CurrentHashRule
	b, err := e.canonicalJCS(dst, true)
	if err != nil {
		return nil, err
	}
	e.Hash = hexSum(b)
	return b, nil
}

// appendHash replaces the closing brace of an object with ,"hash":"<h>"}.
func appendHash(b []byte, h string) []byte {
	b = append(b[:len(b)-1], `,"hash":"`...)
	b = append(b, h...)
	return append(b, `"}`...)
}

// Seal sets the envelope's hash under CurrentHashRule and its payload to the payload's RFC 8785
// form (the stored form); PrevHash must already link it to the account's chain.
func (e *Envelope) Seal() error {
	_, err := e.seal(nil)
	return err
}

// SealLegacy seals the envelope under HashRuleLegacy, as events were sealed before HashRuleJCS.
// The ledger never writes such events any more; tests and tools that rebuild old history do.
func (e *Envelope) SealLegacy() error {
	e.HashRule = HashRuleLegacy
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// VerifyHash reports whether the stored hash matches the envelope's content under its rule.
func (e *Envelope) VerifyHash() bool {
	h, err := e.ComputeHash()
	return err == nil && h == e.Hash
}
