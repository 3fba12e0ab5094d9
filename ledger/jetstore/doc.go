// Package jetstore is the JetStream implementation of the ledger's event store: the LEDGER
// stream, atomic batch appends with expected-last-subject-sequence checks, and ordered reads.
package jetstore
