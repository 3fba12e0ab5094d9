package events

import (
	"bytes"
	"encoding/json"

	"errors"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
)

// ErrUnknownType is returned for an envelope whose type or schema version this build cannot read;
// readers park such messages instead of crashing.
var ErrUnknownType = errors.New("unknown event type")

// ErrMalformed is returned for bytes that are not a well-formed envelope.
var ErrMalformed = errors.New("malformed event")

// Event is a decoded envelope: its stored fields, its payload, and its stream position.
type Event struct {
	Envelope
	// Position is the JetStream sequence of the message; it is not part of the stored bytes.
	Position uint64
	Data     Payload
}

// entry is how the codec reads one event type.
type entry struct {
	schemaVersion int
	decode        func(raw []byte) (Payload, error)
}

// strict is how stored JSON is read: unknown members, duplicate names and invalid UTF-8 are
// errors. The json v2 decoder does this in one pass, several times faster than encoding/json
// with DisallowUnknownFields, which is what makes replay keep up with a raw stream read.
var strict = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true))

func decodeAs[T Payload](raw []byte) (Payload, error) {
	var p T
	if err := jsonv2.Unmarshal(raw, &p, strict); err != nil {
		return nil, err
	}
	return p, nil
}

// registry is the explicit table of every event type this build writes and reads. Adding a type
// means adding a row here; a new schema version of an old type gets an upcaster in its row.
var registry = map[string]entry{
	TypeLicensePurchased:      {1, decodeAs[LicensePurchased]},
	TypeLicenseActivated:      {1, decodeAs[LicenseActivated]},
	TypeContractUpgraded:      {1, decodeAs[ContractUpgraded]},
	TypeCreditsAllocated:      {1, decodeAs[CreditsAllocated]},
	TypeCreditsReleased:       {1, decodeAs[CreditsReleased]},
	TypeAutoRenewSet:          {1, decodeAs[AutoRenewSet]},
	TypePaygContractPurchased: {1, decodeAs[PaygContractPurchased]},
	TypePaygContractActivated: {1, decodeAs[PaygContractActivated]},
	TypeBillingModelSwitched:  {1, decodeAs[BillingModelSwitched]},
	TypeLicenseRenewed:        {1, decodeAs[LicenseRenewed]},
	TypeLicenseExpired:        {1, decodeAs[LicenseExpired]},
	TypeUsageRecorded:         {1, decodeAs[UsageRecorded]},
	TypeSubscriptionLinked:    {1, decodeAs[SubscriptionLinked]},
	TypeSubscriptionUnlinked:  {1, decodeAs[SubscriptionUnlinked]},
	TypeAccountExpired:        {1, decodeAs[AccountExpired]},
}

// Types lists every registered event type, for exhaustiveness tests.
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	return out
}

// SchemaVersion is the version this build writes for an event type (0 if unknown).
func SchemaVersion(eventType string) int { return registry[eventType].schemaVersion }

// EncodePayload renders a payload as the compact JSON the envelope carries.
func EncodePayload(p Payload) (json.RawMessage, error) {
	if _, ok := registry[p.EventType()]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, p.EventType())
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", p.EventType(), err)
	}
	return b, nil
}

// Encode renders a sealed envelope as the bytes stored in the stream: under HashRuleJCS the
// canonical bytes with "hash" appended as the last member (what SealEncode writes), under
// HashRuleLegacy Go's encoding of the Envelope struct (what the ledger wrote before).
func Encode(e *Envelope) ([]byte, error) {
	if e.HashRule == HashRuleJCS {
		b, err := e.canonicalJCS(make([]byte, 0, 320+len(e.Payload)), false)
		if err != nil {
			return nil, fmt.Errorf("encode envelope: %w", err)
		}
		return appendHash(b, e.Hash), nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	return b, nil
}

// Decode parses stored bytes into an event; it never panics and reports unknown types and
// versions with ErrUnknownType. It does not check the hash: see Envelope.VerifyHash.
func Decode(data []byte) (Event, error) {
	var ev Event
	if err := jsonv2.Unmarshal(data, &ev.Envelope, strict); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	en, ok := registry[ev.Type]
	if !ok {
		return Event{}, fmt.Errorf("%w: %q", ErrUnknownType, ev.Type)
	}
	if ev.SchemaVersion != en.schemaVersion {
		return Event{}, fmt.Errorf("%w: %s schema version %d", ErrUnknownType, ev.Type, ev.SchemaVersion)
	}
	if p := bytes.TrimSpace(ev.Payload); len(p) == 0 || p[0] != '{' {
		return Event{}, fmt.Errorf("%w: %s payload is not an object", ErrMalformed, ev.Type)
	}
	p, err := en.decode(ev.Payload)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, ev.Type, err)
	}
	ev.Data = p
	return ev, nil
}
