// Package writer is the ledger's single writer: it holds every account's state in memory,
// decides commands against it with the pure domain rules, and commits the resulting events in
// groups (one atomic append per round), replying to each command only once its events are durable.
package writer
