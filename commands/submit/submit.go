// Package submit is the port between the command service and whatever decides commands: the
// request the service hands over and the result it is answered with. The command service
// (commands/service) declares the port (its Submitter); the writer implements it. The package
// imports only the domain and the wire types, so an implementation links no service code and the
// command service links no writer.
package submit

import (
	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// Request is one command handed over for a decision. Reply is called exactly once, from the
// decider's goroutine, after the command's events are durable or the command is rejected.
type Request struct {
	CommandID     string
	AccountID     string
	CorrelationID string
	// BodyHash identifies the command's content for idempotency: a repeat of CommandID with a
	// different BodyHash is rejected with idempotency_key_reused.
	BodyHash string
	// ExpectedVersion, when set, is the account version the caller decided against; another
	// version is a conflict.
	ExpectedVersion *uint64
	Command         ledger.Command
	Reply           func(Result)
}

// EventRef names one appended event in a result (the wire type, shared with the Go client).
type EventRef = api.EventRef

// Result is the outcome of a command: the account's version and position after it, or an error.
type Result struct {
	AccountID string
	Version   uint64
	Position  uint64
	Events    []EventRef
	// Replayed is true when the result repeats an earlier outcome of the same command_id.
	Replayed bool
	Err      *ledger.Error
	// Redirect is true when the decider did not decide the command because another node owns
	// the account's partition (or is taking it over): Err is then unavailable, and the command
	// service passes the request to the owner instead of replying.
	Redirect bool
}
