package writer

import (
	"context"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
)

// MemStore is the in-memory store (ledger/memstore) with hooks for the writer's tests that need
// no NATS: they make one account's store calls block or fail. The zero value is ready.
type MemStore struct {
	mem *memstore.Store
	// BeforeAppend, when set, runs before an append is applied; a non-nil error refuses it.
	BeforeAppend func(recs []ledger.Record) error
	// BeforeRead, when set, runs before ReadAccount, AccountVersion, ReadAt, FenceHeads and
	// Fingerprints (op names which; accountID is "" for the last three); it may block, and a
	// non-nil error fails the read.
	BeforeRead func(ctx context.Context, op, accountID string) error
}

var _ ledger.Store = (*MemStore)(nil)

func (s *MemStore) store() *memstore.Store {
	if s.mem == nil {
		s.mem = memstore.New()
	}
	return s.mem
}

func (s *MemStore) before(ctx context.Context, op, accountID string) error {
	if s.BeforeRead == nil {
		return nil
	}
	return s.BeforeRead(ctx, op, accountID)
}

// Append stores all records or none, after BeforeAppend.
func (s *MemStore) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	if s.BeforeAppend != nil {
		if err := s.BeforeAppend(recs); err != nil {
			return nil, err
		}
	}
	return s.store().Append(ctx, recs)
}

// Put appends records without a version check and without the hooks (another writer's appends).
func (s *MemStore) Put(recs ...ledger.Record) {
	if _, err := s.store().Append(context.Background(), recs); err != nil {
		panic(err) // no record checks its version: an in-memory append of well-formed records cannot fail
	}
}

// Read calls fn for every record from position from.
func (s *MemStore) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	return s.store().Read(ctx, from, fn)
}

// ReadAccount returns the account's records in order, after BeforeRead.
func (s *MemStore) ReadAccount(ctx context.Context, accountID string, from uint64) ([]ledger.Record, error) {
	if err := s.before(ctx, "ReadAccount", accountID); err != nil {
		return nil, err
	}
	return s.store().ReadAccount(ctx, accountID, from)
}

// AccountVersion is the version of the account's last record, after BeforeRead.
func (s *MemStore) AccountVersion(ctx context.Context, accountID string) (uint64, error) {
	if err := s.before(ctx, "AccountVersion", accountID); err != nil {
		return 0, err
	}
	return s.store().AccountVersion(ctx, accountID)
}

// ReadAt returns the record at position, after BeforeRead.
func (s *MemStore) ReadAt(ctx context.Context, position uint64) (ledger.Record, error) {
	if err := s.before(ctx, "ReadAt", ""); err != nil {
		return ledger.Record{}, err
	}
	return s.store().ReadAt(ctx, position)
}

// Fence stores ownership records (another node taking a partition over, in the tests).
func (s *MemStore) Fence(ctx context.Context, claims []ledger.FenceClaim) ([]uint64, error) {
	return s.store().Fence(ctx, claims)
}

// FenceHeads returns the partitions' last ownership records, after BeforeRead.
func (s *MemStore) FenceHeads(ctx context.Context, ps []int) ([]uint64, error) {
	if err := s.before(ctx, "FenceHeads", ""); err != nil {
		return nil, err
	}
	return s.store().FenceHeads(ctx, ps)
}

// Fingerprints returns the fingerprints of the messages at ps, after BeforeRead.
func (s *MemStore) Fingerprints(ctx context.Context, ps []uint64) ([][]byte, error) {
	if err := s.before(ctx, "Fingerprints", ""); err != nil {
		return nil, err
	}
	return s.store().Fingerprints(ctx, ps)
}
