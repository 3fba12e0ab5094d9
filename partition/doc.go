// Package partition decides which node writes which accounts: accounts fall into a fixed number
// of partitions (ledger.PartitionOf), Assign spreads partitions over the live nodes, and a
// Keeper holds this node's share as leases in a store every node shares (jetstore.Leases), so
// that at most one node writes a partition at any time. It imports no NATS package.
package partition
