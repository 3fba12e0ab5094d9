package commands

import "github.com/creditledger/creditledger/api"

// Service identity and subjects; outside clients rely on them.
const (
	ServiceName   = "creditledger"
	SubjectPrefix = "ledger.cmd"
	// ReplayedHeader is set to "true" on a reply that repeats an earlier outcome of the same
	// command_id; the body is the first reply, unchanged.
	ReplayedHeader = api.ReplayedHeader
	// ServiceVersion was the fixed version the service reported.
	//
	// Deprecated: the running service reports the version of its build ($SRV.INFO, `creditledger
	// --version`); this constant is no longer used.
	ServiceVersion = "0.1.0"
)

// Subject is the request subject of a command.
func Subject(name string) string { return SubjectPrefix + "." + name }
