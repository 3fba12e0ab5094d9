// Package commands is the ledger's command edge: the wire types of every command, their
// validation into domain commands, the NATS micro service that hands them to the writer, and a
// typed Go client other services can import.
package commands
