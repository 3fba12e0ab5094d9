// Package projections builds the read models from the LEDGER stream and serves them to
// dashboards over NATS and HTTP: one account's balance, license list, billing-switch history,
// usage, account status and PAYG contracts (views.go, usage.go, account.go), and the fleet read
// models across accounts — the account list, totals, PAYG charges and contracts (fleet.go) —
// rendered from the same state, so they share one position, one checkpoint and one skip.
//
// The read models fold events with the same ledger.Evolve the writer uses, so a balance read here
// can never disagree with the balance a command was decided against. They live in memory, fed by
// an ordered consumer from the position they last applied; each event is applied at most once
// (positions at or below the applied one are skipped), so redelivery and replay are safe.
//
// Durable checkpoints: every DefaultSnapshotEvery events and at shutdown the projector saves the
// read models together with the position they reflect (object "projections-v1" in the
// LEDGER_SNAPSHOTS object store) and resumes after that position on restart. Because state and
// position are saved as one object, a crash between applying and checkpointing can only replay
// events the checkpoint does not contain: nothing is counted twice. A durable JetStream consumer
// would keep its ack floor apart from the in-memory state, which is why an ordered consumer plus
// this checkpoint is used instead.
package projections
