// Package metrics exposes the ledger's Prometheus metrics: commands by name and outcome with
// their latency, queries with their latency, the writer's running totals (events appended,
// conflicts retried, idempotent replays) read at scrape time, and each read model's position
// and lag behind the stream. It keeps its own registry; nothing here is package-level state.
package metrics
