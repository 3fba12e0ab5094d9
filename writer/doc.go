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
// (subclaims.go), and the re-reads before a snapshot.
//
// The Writer's state is in parts with one job each; none calls the store itself (sideWork only
// runs the calls the writer hands it), and all but sideWork have unit tests without NATS:
//
//   - accountCache (cache.go): the accounts of the held partitions, the holders of unique ids,
//     the re-reads and AdvanceTime requests in flight, which partitions were loaded and dropped.
//   - idempotency (idempotency.go, rejcompact.go): what was answered to each command_id,
//     accepted and rejected, in full or compact form.
//   - inFlight (inflight.go): the appends in flight: busy accounts and command ids, unique ids
//     reserved, and how the last append went.
//   - batching (batching.go): when a round starts, a pure function of what waits and when.
//   - snapshotter (snapshotter.go): when the next snapshot is due, the save and encoding in
//     flight, and the legacy object of compacted entries; snapshot.go and partsnap.go drive it,
//     and snapident.go keeps a load from restoring a snapshot of another history of the stream.
//   - dueHeap (due.go): when accounts fall due for the expiry processor.
//   - sideWork (side.go): the store calls beside the loop, and their results handed back.
//
// The Writer itself keeps its options, the queue, the committed head and the run loop's own few
// fields (subscription steps in flight: substep.go; claims seen: claims.go; reported breaks:
// marks.go).
package writer
