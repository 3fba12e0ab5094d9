// Package jetstore is the JetStream implementation of the ledger's event store: the LEDGER
// stream, atomic batch appends whose expected account versions it turns into the
// expected-last-subject-sequence checks the server enforces (versions.go), and ordered reads.
package jetstore
