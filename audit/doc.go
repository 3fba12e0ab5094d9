// Package audit answers an auditor's questions without trusting the running ledger service:
// what happened, in what order, was anything altered or removed, and what was an account's
// balance at a past moment.
//
// Everything here reads the LEDGER stream over the auditor's own NATS connection (ordered
// consumers and direct gets, see Source) and recomputes from the stored bytes:
//
//   - Replay and Export write the stored messages verbatim, as JSON lines or CSV.
//   - Chain and Verify recompute every event's hash under the rule its envelope names
//     (events.StoredHash), each account's chain (versions 1..n, prev_hash links from
//     events.ZeroHash), the stream's contiguity and the log tree, and check every signed
//     checkpoint against them and against the checkpoint before it.
//   - BalanceAt folds one account with the domain's own ledger.Evolve to a past time or position.
//   - LogTree is the RFC 6962 Merkle tree over every stored message in stream order (compact
//     ranges from github.com/transparency-dev/merkle, O(log n) memory); checkpoints sign its root
//     as C2SP tlog checkpoints in signed notes (SignLogCheckpoint, ParseLogCheckpoint, with
//     golang.org/x/mod/sumdb/note). BuildEventProof and BuildConsistencyProof are its inclusion
//     and consistency proofs. The first checkpoints the ledger stored (Checkpoint: a root over
//     every account's chain head and a log digest, Ed25519 over JSON) keep verifying.
//   - Rebuild refolds every read model from position 0 and compares it with the live answers.
//
// The ledger's checkpoint publisher (package server) signs what a Chain computes, so an auditor
// recomputing the same Chain gets bit-identical roots. docs/FORMAT.md is the specification an
// outside verifier works from (testdata/ holds its vectors); docs/AUDITORS.md the user's guide.
package audit
