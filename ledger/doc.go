// Package ledger is the account aggregate: pure Decide and Evolve over an account's events,
// the domain commands and errors, the feature catalogue, and the small event-store contract the
// infrastructure implements. It imports no NATS package and never reads the clock: time is an
// argument.
package ledger
