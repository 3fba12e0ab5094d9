package ledger

// DefaultPartitions is the partition count of a store created without one: enough to spread
// over a dozen nodes with a few partitions each.
const DefaultPartitions = 64

// MaxPartitions bounds the partition count a store may record.
const MaxPartitions = 4096

// PartitionOf is the partition of an account among n (0 <= result < n): FNV-1a (32 bits) of the
// account id, modulo n. It is part of the stored format: a store records n when it is created,
// and every node must place an account in the same partition forever.
func PartitionOf(accountID string, n int) int {
	if n <= 1 {
		return 0
	}
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(accountID); i++ {
		h ^= uint32(accountID[i])
		h *= prime32
	}
	return int(h % uint32(n))
}
