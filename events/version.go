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
	Version  *uint64 `json:"version"`
	Hash     string  `json:"hash"`
	PrevHash string  `json:"prev_hash"`
}

// Link is where a stored envelope sits in its account's chain: its version, its hash and the
// hash of the event before it.
type Link struct {
	Version        uint64
	Hash, PrevHash string
}

// LinkOf reads a stored envelope's version and chain hashes without decoding the rest: a store
// that meets an account's last message for the first time checks that the record it appends
// continues it (a foreign message repeating the version does not), with no full decode.
func LinkOf(data []byte) (Link, error) {
	var v versionOnly
	if err := jsonv2.Unmarshal(data, &v); err != nil {
		return Link{}, fmt.Errorf("%w: %v", ErrNoVersion, err)
	}
	if v.Version == nil || *v.Version == 0 {
		return Link{}, fmt.Errorf("%w: no version member", ErrNoVersion)
	}
	return Link{Version: *v.Version, Hash: v.Hash, PrevHash: v.PrevHash}, nil
}

// VersionOf reads the account version of a stored envelope (its "version" member) without
// decoding the rest: a store that enforces versions with its own positions (the JetStream store)
// learns from it where an account stands. It reads legacy and RFC 8785 envelopes alike and
// never panics.
func VersionOf(data []byte) (uint64, error) {
	l, err := LinkOf(data)
	return l.Version, err
}
