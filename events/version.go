package events

import (
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
)

// ErrNoVersion is returned by VersionOf for bytes that carry no account version: not a JSON
// object, or one whose version member is missing, zero or not a whole number.
var ErrNoVersion = errors.New("stored message carries no account version")

// versionOnly reads the one member of an envelope a store needs to place it in its account.
type versionOnly struct {
	Version *uint64 `json:"version"`
}

// VersionOf reads the account version of a stored envelope (its "version" member) without
// decoding the rest: a store that enforces versions with its own positions (the JetStream store)
// learns from it where an account stands. It reads legacy and RFC 8785 envelopes alike and
// never panics.
func VersionOf(data []byte) (uint64, error) {
	var v versionOnly
	if err := jsonv2.Unmarshal(data, &v); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoVersion, err)
	}
	if v.Version == nil || *v.Version == 0 {
		return 0, fmt.Errorf("%w: no version member", ErrNoVersion)
	}
	return *v.Version, nil
}
