package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/creditledger/creditledger/ledger"
)

// wire is implemented by every command request type.
type wire interface {
	meta() *Meta
	domain() (ledger.Command, error)
}

// MaxRequestBytes bounds a command request body.
const MaxRequestBytes = 64 * 1024

// registry maps each command name (the last token of ledger.cmd.<name>) to its request type.
var registry = map[string]func() wire{
	"purchase_license":       func() wire { return &PurchaseLicense{} },
	"activate_license":       func() wire { return &ActivateLicense{} },
	"upgrade_contract":       func() wire { return &UpgradeContract{} },
	"allocate_credits":       func() wire { return &AllocateCredits{} },
	"release_credits":        func() wire { return &ReleaseCredits{} },
	"set_auto_renew":         func() wire { return &SetAutoRenew{} },
	"purchase_payg_contract": func() wire { return &PurchasePaygContract{} },
	"activate_payg_contract": func() wire { return &ActivatePaygContract{} },
	"switch_billing_model":   func() wire { return &SwitchBillingModel{} },
	"record_usage":           func() wire { return &RecordUsage{} },
	"link_subscription":      func() wire { return &LinkSubscription{} },
	"unlink_subscription":    func() wire { return &UnlinkSubscription{} },
}

// Names lists the command names, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RequestType is the wire type of command name (nil for an unknown name): for schema names and
// for tools that derive flags from its JSON tags.
func RequestType(name string) reflect.Type {
	f, ok := registry[name]
	if !ok {
		return nil
	}
	return reflect.TypeOf(f()).Elem()
}

// Parsed is a validated command ready for the writer.
type Parsed struct {
	Meta
	Command ledger.Command
	// BodyHash identifies the request's content (name and normalised fields) for idempotency.
	BodyHash string
}

// Parse decodes and validates one request; every failure is an invalid_argument *ledger.Error.
func Parse(name string, data []byte) (Parsed, error) {
	mk, ok := registry[name]
	if !ok {
		return Parsed{}, ledger.Reject(ledger.CodeInvalidArgument, "unknown command %q", name)
	}
	if len(data) > MaxRequestBytes {
		return Parsed{}, ledger.Reject(ledger.CodeInvalidArgument, "request larger than %d bytes", MaxRequestBytes)
	}
	w := mk()
	// Strict JSON: exact (case-sensitive) member names, no unknown or duplicate members, valid
	// UTF-8, nothing after the object. encoding/json would let "Credits" override "credits".
	if err := jsonv2.Unmarshal(data, w, jsonv2.RejectUnknownMembers(true)); err != nil {
		return Parsed{}, ledger.Reject(ledger.CodeInvalidArgument, "malformed request: %v", err)
	}
	m := w.meta()
	if err := m.check(); err != nil {
		return Parsed{}, ledger.Reject(ledger.CodeInvalidArgument, "%v", err)
	}
	cmd, err := w.domain()
	if err != nil {
		return Parsed{}, ledger.Reject(ledger.CodeInvalidArgument, "%v", err)
	}
	hash, err := bodyHash(name, w)
	if err != nil {
		return Parsed{}, ledger.Reject(ledger.CodeInternal, "%v", err)
	}
	return Parsed{Meta: *m, Command: cmd, BodyHash: hash}, nil
}

// bodyHash hashes the normalised request (amounts in canonical form, fields in a fixed order),
// so a retry that spells "10" as 10 or "10.0" still counts as the same body. expected_version and
// correlation_id are left out: a retry may carry a fresher version or a new trace.
func bodyHash(name string, w wire) (string, error) {
	m := w.meta()
	saved := *m
	m.ExpectedVersion, m.CorrelationID = nil, ""
	b, err := json.Marshal(w)
	*m = saved
	if err != nil {
		return "", fmt.Errorf("hash command: %w", err)
	}
	sum := sha256.Sum256(append([]byte(name+"\n"), b...))
	return hex.EncodeToString(sum[:16]), nil
}
