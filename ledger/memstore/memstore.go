// Package memstore is an in-memory ledger.Store: the contract's second implementation (the
// contract suite, ledger/storetest, runs against it and the JetStream store) and a store for
// tests that need no NATS. It keeps everything in one process's memory: not for production.
package memstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/creditledger/creditledger/ledger"
)

// Store is an in-memory event store with the JetStream store's semantics: one total order,
// atomic multi-record appends, and a per-account expected-head check.
type Store struct {
	mu   sync.Mutex
	recs []ledger.Record
	last map[string]uint64
	// FailNext, when set, makes the next Append report ledger.ErrUncertain after storing (true)
	// or without storing (false) its records: an append whose outcome the caller cannot know.
	failNext *bool
}

// New returns an empty store.
func New() *Store { return &Store{last: map[string]uint64{}} }

// UncertainNext makes the next Append report ledger.ErrUncertain; stored says whether its
// records are stored all the same.
func (s *Store) UncertainNext(stored bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = &stored
}

// Append stores all records or none: it refuses the whole append (ledger.ErrConflict) when an
// account's head is not the Head a CheckHead record expects.
func (s *Store) Append(_ context.Context, recs []ledger.Record) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(recs) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.CheckHead && !seen[r.AccountID] && s.last[r.AccountID] != r.Head {
			return nil, fmt.Errorf("%w: account %s is at %d, not %d", ledger.ErrConflict, r.AccountID, s.last[r.AccountID], r.Head)
		}
		seen[r.AccountID] = true
	}
	fail := s.failNext
	s.failNext = nil
	if fail != nil && !*fail {
		return nil, fmt.Errorf("%w: (memstore) not stored", ledger.ErrUncertain)
	}
	pos := make([]uint64, len(recs))
	for i, r := range recs {
		r.Position = uint64(len(s.recs)) + 1
		r.CheckHead, r.Head = false, 0
		s.recs = append(s.recs, r)
		s.last[r.AccountID] = r.Position
		pos[i] = r.Position
	}
	if fail != nil {
		return nil, fmt.Errorf("%w: (memstore) stored, answer lost", ledger.ErrUncertain)
	}
	return pos, nil
}

// Read calls fn for every record from position from up to the head at the time of the call.
func (s *Store) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	s.mu.Lock()
	recs := s.recs
	s.mu.Unlock()
	head := uint64(len(recs))
	if from < 1 {
		from = 1
	}
	for p := from; p <= head; p++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := fn(recs[p-1]); err != nil {
			return 0, err
		}
	}
	return head, nil
}

// ReadAccount returns every record of one account, in order.
func (s *Store) ReadAccount(_ context.Context, accountID string) ([]ledger.Record, error) {
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

// AccountHead is the position of the account's last record (0 if none).
func (s *Store) AccountHead(_ context.Context, accountID string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[accountID], nil
}

// ReadAt returns the record at position.
func (s *Store) ReadAt(_ context.Context, position uint64) (ledger.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if position < 1 || position > uint64(len(s.recs)) {
		return ledger.Record{}, fmt.Errorf("position %d: %w", position, ledger.ErrNoRecord)
	}
	return s.recs[position-1], nil
}

var _ ledger.Store = (*Store)(nil)
