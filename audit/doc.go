// Package audit answers an auditor's questions without trusting the running ledger service:
// what happened, in what order, was anything altered or removed, and what was an account's
// balance at a past moment.
//
// Everything here reads the LEDGER stream over the auditor's own NATS connection (ordered
// consumers and direct gets, see Source) and recomputes from the stored bytes:
//
//   - Replay and Export write the stored messages verbatim, as JSON lines or CSV.
//   - Chain and Verify recompute every event's hash, each account's chain (versions 1..n,
//     prev_hash links from events.ZeroHash), the stream's contiguity, and check every signed
//     checkpoint against the recomputed roots.
//   - BalanceAt folds one account with the domain's own ledger.Evolve to a past time or position.
//   - Checkpoint, NewCheckpoint and BuildProof are the signed checkpoints: an RFC 6962 Merkle
//     root over every account's chain head (sorted by account id) plus a digest over the whole
//     log, signed with Ed25519; an inclusion proof shows one account's head under a signed root.
//   - Rebuild refolds every read model from position 0 and compares it with the live answers.
//
// The ledger's checkpoint publisher (package server) signs what a Chain computes, so an auditor
// recomputing the same Chain gets bit-identical roots. docs/AUDITORS.md is the user's guide.
package audit
