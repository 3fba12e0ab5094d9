// Package service is the ledger's command service: one NATS micro endpoint per command
// (ledger.cmd.<name>) that validates the request and hands it to the writer, which replies once
// the command's events are durable or the command is rejected.
package service
