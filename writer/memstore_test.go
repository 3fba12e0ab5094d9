package writer

import (
	"context"
	"fmt"
	"sync"

	"github.com/creditledger/creditledger/ledger"
)

// MemStore is an in-memory ledger.Store for the writer's tests that need no NATS: atomic
// appends with the per-account head check, reads by position and by account. Hooks let a test
// make one account's calls block or fail.
type MemStore struct {
	mu   sync.Mutex
	recs []ledger.Record
	// BeforeAppend, when set, runs before an append is applied; a non-nil error refuses it.
	BeforeAppend func(recs []ledger.Record) error
	// BeforeRead, when set, runs before ReadAccount, AccountHead and ReadAt (op names which;
	// accountID is "" for ReadAt); it may block, and a non-nil error fails the read.
	BeforeRead func(ctx context.Context, op, accountID string) error
}

var _ ledger.Store = (*MemStore)(nil)

// Append stores all records or none; a record with CheckHead is refused with ErrConflict unless
// its account's last position is still Head.
func (s *MemStore) Append(_ context.Context, recs []ledger.Record) ([]uint64, error) {
	if s.BeforeAppend != nil {
		if err := s.BeforeAppend(recs); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if r.CheckHead && s.headLocked(r.AccountID) != r.Head {
			return nil, fmt.Errorf("%w: account %s", ledger.ErrConflict, r.AccountID)
		}
	}
	out := make([]uint64, len(recs))
	for i, r := range recs {
		r.Position = uint64(len(s.recs)) + 1
		r.CheckHead, r.Head = false, 0
		s.recs = append(s.recs, r)
		out[i] = r.Position
	}
	return out, nil
}

// Put appends records without any check (another writer's appends, in a test).
func (s *MemStore) Put(recs ...ledger.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		r.Position = uint64(len(s.recs)) + 1
		s.recs = append(s.recs, r)
	}
}

func (s *MemStore) headLocked(accountID string) uint64 {
	for i := len(s.recs) - 1; i >= 0; i-- {
		if s.recs[i].AccountID == accountID {
			return s.recs[i].Position
		}
	}
	return 0
}

// Read calls fn for every record from position from.
func (s *MemStore) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	s.mu.Lock()
	recs := s.recs
	s.mu.Unlock()
	if from == 0 {
		from = 1
	}
	for i := from; i <= uint64(len(recs)); i++ {
		if err := fn(recs[i-1]); err != nil {
			return 0, err
		}
	}
	return uint64(len(recs)), ctx.Err()
}

func (s *MemStore) before(ctx context.Context, op, accountID string) error {
	if s.BeforeRead == nil {
		return nil
	}
	return s.BeforeRead(ctx, op, accountID)
}

// ReadAccount returns the account's records in order.
func (s *MemStore) ReadAccount(ctx context.Context, accountID string) ([]ledger.Record, error) {
	if err := s.before(ctx, "ReadAccount", accountID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ledger.Record
	for _, r := range s.recs {
		if r.AccountID == accountID {
			out = append(out, r)
		}
	}
	return out, nil
}

// AccountHead is the position of the account's last record.
func (s *MemStore) AccountHead(ctx context.Context, accountID string) (uint64, error) {
	if err := s.before(ctx, "AccountHead", accountID); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headLocked(accountID), nil
}

// ReadAt returns the record at position.
func (s *MemStore) ReadAt(ctx context.Context, position uint64) (ledger.Record, error) {
	if err := s.before(ctx, "ReadAt", ""); err != nil {
		return ledger.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if position == 0 || position > uint64(len(s.recs)) {
		return ledger.Record{}, ledger.ErrNoRecord
	}
	return s.recs[position-1], nil
}
