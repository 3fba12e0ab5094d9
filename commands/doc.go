// Package commands is the ledger's command contract: the wire types of every command and their
// validation into domain commands. It links no server code (no writer, no logger): the NATS
// micro service that hands commands to the writer is commands/service, and the Go client other
// services import is ledgerclient.
package commands
