// Package writer is the ledger's single writer: it holds every account's state in memory,
// decides commands against it with the pure domain rules, and commits the resulting events in
// groups (one atomic append per round), replying to each command only once its events are durable.
//
// One goroutine (Run) owns all of that state: a round's append, and the write of its rejections
// to the rejection log (then a read of their partitions' fences, rejections.go), run in the
// background together (round.go), and re-reads, read-backs and id claims run on a few side
// workers (side.go, beside.go) that hand their results back; so does a periodic snapshot's
// encoding and save, the goroutine only capturing the state (snapcapture.go). Not yet
// beside it: a subscription link's or unlink's claim and the other partition's holder it reads
// (subclaims.go), and the re-reads before a snapshot. Parts with one job each: batching (when a round
// starts, a pure function), idempotency (what was answered to each command_id), dueHeap (when
// accounts fall due), sideWork (the store calls beside the loop).
package writer
