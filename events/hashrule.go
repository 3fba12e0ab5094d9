package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/shopspring/decimal"
)

// Hash rules: how an envelope's hash is computed. The envelope's hash_rule member says which one
// made its hash, so history written under an older rule keeps verifying after the rule changes.
// docs/FORMAT.md is the specification of both.
const (
	// HashRuleLegacy (no hash_rule member) is SHA-256 over the envelope without hash as Go's
	// encoding/json wrote the canonical struct: the fields in declaration order, HTML characters
	// escaped. Only this project's Go code could rebuild those bytes; events stored before
	// HashRuleJCS keep it.
	HashRuleLegacy = ""
	// HashRuleJCS is SHA-256 over the RFC 8785 (JSON Canonicalization Scheme) bytes of the stored
	// JSON object with its "hash" member removed: any language's JCS implementation rebuilds
	// them from the stored message alone.
	HashRuleJCS = "rfc8785-sha256"
	// CurrentHashRule is the rule Seal and SealEncode use for every new event.
	CurrentHashRule = HashRuleJCS
)

// ErrUnknownHashRule is returned for an envelope whose hash_rule this build does not know.
var ErrUnknownHashRule = errors.New("unknown hash rule")

// maxJCSInteger is 2^53: RFC 8785 serialises numbers as IEEE 754 doubles, which hold every
// integer up to it exactly. A version beyond it cannot be written under HashRuleJCS.
const maxJCSInteger = 1 << 53

// canonicalJCS appends the RFC 8785 bytes of the envelope without hash. It writes the members
// directly in RFC 8785 order (by UTF-16 code units; every name is ASCII, so byte order) instead
// of marshalling and re-sorting, which keeps sealing cheap on the append path. Only the payload,
// an arbitrary object, goes through the general canonicalizer. TestCanonicalJCSMatchesRFC8785
// checks it against jsontext's RFC 8785 implementation.
//
// With payloadCanonical the payload is taken as it is (the caller has just canonicalized it);
// otherwise a canonical copy is made.
func (e *Envelope) canonicalJCS(dst []byte, payloadCanonical bool) ([]byte, error) {
	if e.Version > maxJCSInteger || e.SchemaVersion < 0 || e.SchemaVersion > maxJCSInteger {
		return nil, fmt.Errorf("canonical envelope: version %d or schema_version %d beyond 2^53", e.Version, e.SchemaVersion)
	}
	payload := e.Payload
	if !payloadCanonical {
		var err error
		if payload, err = canonicalPayload(payload); err != nil {
			return nil, err
		}
	}
	var err error
	str := func(name, v string) {
		if err == nil {
			dst = append(dst, name...)
			dst, err = jsontext.AppendQuote(dst, v)
		}
	}
	str(`{"account_id":`, e.AccountID)
	if e.CommandHash != "" { // omitempty, as the stored form omits it
		str(`,"command_hash":`, e.CommandHash)
	}
	str(`,"command_id":`, e.CommandID)
	str(`,"correlation_id":`, e.CorrelationID)
	str(`,"event_id":`, e.EventID)
	str(`,"hash_rule":`, e.HashRule)
	if err != nil {
		return nil, fmt.Errorf("canonical envelope: %w", err)
	}
	dst = append(dst, `,"occurred_at":`...)
	if dst, err = appendTime(dst, e.OccurredAt); err != nil {
		return nil, fmt.Errorf("canonical envelope: occurred_at: %w", err)
	}
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	str(`,"prev_hash":`, e.PrevHash)
	dst = append(dst, `,"schema_version":`...)
	dst = strconv.AppendInt(dst, int64(e.SchemaVersion), 10)
	str(`,"type":`, e.Type)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, e.Version, 10)
	if err != nil {
		return nil, fmt.Errorf("canonical envelope: %w", err)
	}
	return append(dst, '}'), nil
}

// ErrInexactNumber is returned when sealing a payload holds a JSON number that RFC 8785 would
// change: it writes every number as the IEEE 754 double nearest to it, so an integer beyond
// 2^53 or a decimal with more digits than a double holds would be stored (and hashed) as
// another value. Amounts are decimal strings for that reason; a number never is silently changed.
var ErrInexactNumber = errors.New("number not exact as an RFC 8785 (IEEE 754 double) number")

// canonicalPayload returns the RFC 8785 form of a payload, in a new slice. It refuses a payload
// whose numbers that form would change (ErrInexactNumber).
func canonicalPayload(p json.RawMessage) (json.RawMessage, error) {
	if err := exactNumbers(p); err != nil {
		return nil, fmt.Errorf("canonical envelope: payload: %w", err)
	}
	v := jsontext.Value(bytes.Clone(p))
	if err := v.Canonicalize(); err != nil {
		return nil, fmt.Errorf("canonical envelope: payload: %w", err)
	}
	return json.RawMessage(v), nil
}

// exactNumbers checks every number literal of a JSON text (outside strings) for one that the
// nearest IEEE 754 double does not represent exactly. Invalid JSON is left to the canonicalizer.
func exactNumbers(b []byte) error {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"': // skip the string, escapes included
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && bytes.IndexByte([]byte("+-.0123456789eE"), b[j]) >= 0 {
				j++
			}
			if lit := b[i:j]; !smallInteger(lit) && !exactNumber(string(lit)) {
				return fmt.Errorf("%w: %s", ErrInexactNumber, lit)
			}
			i = j - 1
		}
	}
	return nil
}

// smallInteger reports whether lit is an integer of at most 15 digits, which every double holds
// (the common case, checked without allocating).
func smallInteger(lit []byte) bool {
	lit = bytes.TrimPrefix(lit, []byte("-"))
	if len(lit) == 0 || len(lit) > 15 {
		return false
	}
	for _, c := range lit {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// exactNumber reports whether the double nearest to the literal has exactly its value.
func exactNumber(lit string) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	d, err := decimal.NewFromString(lit)
	return err == nil && decimal.NewFromFloat(f).Equal(d)
}

// appendTime writes t as encoding/json does (RFC 3339 with nanoseconds, its own zone), quoted.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return dst, fmt.Errorf("year %d outside [0,9999]", y)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// CanonicalStored returns the bytes HashRuleJCS hashes for a stored message: the RFC 8785 form
// of the stored JSON object with its top-level "hash" member removed. It reads the stored bytes
// themselves, not a decoded struct, exactly as docs/FORMAT.md tells an outside verifier to.
func CanonicalStored(data []byte) ([]byte, error) {
	if without, err := LegacyStored(data); err == nil && !bytes.Contains(without, []byte(`"hash"`)) {
		// The form the ledger stores: "hash" is the last member and appears nowhere else, so
		// cutting it off leaves the object without it, which one canonicalizing pass finishes.
		v := jsontext.Value(without)
		if err := v.Canonicalize(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return v, nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	out := make([]byte, 0, len(data))
	out = append(out, '{')
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		name := tok.String() // read before the next call voids the token
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if name == "hash" {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		if out, err = jsontext.AppendQuote(out, name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		out = append(append(out, ':'), v...)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the object", ErrMalformed)
	}
	v := jsontext.Value(append(out, '}'))
	if err := v.Canonicalize(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return v, nil
}

// StoredHash recomputes the hash of a stored message under the rule its envelope names, from
// the stored bytes themselves as docs/FORMAT.md tells an outside verifier to: for HashRuleJCS,
// CanonicalStored; for HashRuleLegacy, LegacyStored. ev is data decoded.
func StoredHash(data []byte, ev *Envelope) (string, error) {
	switch ev.HashRule {
	case HashRuleLegacy:
		if namesHashRule(data) {
			// The legacy rule is the absence of the member: "hash_rule":"" names no rule, as
			// docs/FORMAT.md reads (an outside verifier refuses it), though it decodes as "".
			return "", fmt.Errorf("%w: %q", ErrUnknownHashRule, ev.HashRule)
		}
		b, err := LegacyStored(data)
		if err != nil {
			return "", err
		}
		return hexSum(b), nil
	case HashRuleJCS:
		b, err := CanonicalStored(data)
		if err != nil {
			return "", err
		}
		return hexSum(b), nil
	default:
		return "", fmt.Errorf("%w: %q", ErrUnknownHashRule, ev.HashRule)
	}
}

// namesHashRule reports whether the stored JSON object has a top-level hash_rule member. Only
// messages that hold the quoted name at all are parsed, so legacy events cost one byte search.
func namesHashRule(data []byte) bool {
	if !bytes.Contains(data, []byte(`"hash_rule"`)) {
		return false
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return false
		}
		if tok.String() == "hash_rule" {
			return true
		}
		if err := dec.SkipValue(); err != nil {
			return false
		}
	}
	return false
}

// legacyHashSuffix is how every legacy stored message ends: ,"hash":"<64 hex>"}.
const legacyHashSuffix = len(`,"hash":"`) + 64 + len(`"}`)

// LegacyStored returns the bytes HashRuleLegacy hashed for a stored message: the ledger stored
// those bytes with the hash appended as the last member, so they are the stored bytes with the
// final ,"hash":"<64 hex>" member cut out. A message not in that form is an error.
func LegacyStored(data []byte) ([]byte, error) {
	n := len(data) - legacyHashSuffix
	if n < 1 || !bytes.HasPrefix(data[n:], []byte(`,"hash":"`)) || !bytes.HasSuffix(data, []byte(`"}`)) {
		return nil, fmt.Errorf("%w: a legacy event must end with its \"hash\" member", ErrMalformed)
	}
	return append(data[:n:n], '}'), nil
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// legacyCanonical is the envelope without its hash in the field order HashRuleLegacy hashes.
type legacyCanonical struct {
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

func (e *Envelope) legacyBytes() ([]byte, error) {
	b, err := json.Marshal(legacyCanonical{
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
