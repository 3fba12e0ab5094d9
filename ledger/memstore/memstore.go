// Package memstore is an in-memory ledger.Store: the contract's second implementation (the
// contract suite, ledger/storetest, runs against it and the JetStream store) and a store for
// tests that need no NATS. It keeps everything in one process's memory: not for production.
package memstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/creditledger/creditledger/ledger"
)

// Store is an in-memory event store with the JetStream store's semantics: one total order,
// atomic multi-record appends, and a per-account expected-version check.
type Store struct {
	mu   sync.Mutex
	recs []ledger.Record
	// last is each account's last version.
	last map[string]uint64
	// fences maps the position of each ownership record to its partition; fenceLast is each
	// partition's last one. Ownership records share the total order but are not events.
	fences    map[uint64]int
	fenceLast map[int]uint64
	// FailNext, when set, makes the next Append report ledger.ErrUncertain after storing (true)
	// or without storing (false) its records: an append whose outcome the caller cannot know.
	failNext *bool
	// apart makes PartitionsApart true (KeepPartitionsApart).
	apart bool
}

// New returns an empty store.
func New() *Store {
	return &Store{last: map[string]uint64{}, fences: map[uint64]int{}, fenceLast: map[int]uint64{}}
}

// UncertainNext makes the next Append report ledger.ErrUncertain; stored says whether its
// records are stored all the same.
func (s *Store) UncertainNext(stored bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = &stored
}

// Append stores all records or none: it refuses the whole append (ledger.ErrConflict) when an
// account's last version is not the ExpectedVersion a CheckVersion record expects, or a
// partition's last ownership record is not the FenceHead a CheckFence record expects.
func (s *Store) Append(_ context.Context, recs []ledger.Record) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(recs) == 0 {
		return nil, nil
	}
	if err := s.check(recs); err != nil {
		return nil, err
	}
	fail := s.failNext
	s.failNext = nil
	if fail != nil && !*fail {
		return nil, fmt.Errorf("%w: (memstore) not stored", ledger.ErrUncertain)
	}
	pos := make([]uint64, len(recs))
	for i, r := range recs {
		r.Position = uint64(len(s.recs)) + 1
		r.CheckVersion, r.ExpectedVersion = false, 0
		r.CheckFence, r.FencePartition, r.FenceHead = false, 0, 0
		s.recs = append(s.recs, r)
		s.last[r.AccountID] = r.Version
		pos[i] = r.Position
	}
	if fail != nil {
		return nil, fmt.Errorf("%w: (memstore) stored, answer lost", ledger.ErrUncertain)
	}
	return pos, nil
}

// check is Append's precondition: the records are well formed, and every version and fence a
// record expects is still there.
func (s *Store) check(recs []ledger.Record) error {
	if err := ledger.CheckAppend(recs); err != nil {
		return err
	}
	for _, r := range recs {
		if r.CheckVersion && s.last[r.AccountID] != r.ExpectedVersion {
			return fmt.Errorf("%w: account %s is at version %d, not %d", ledger.ErrConflict, r.AccountID, s.last[r.AccountID], r.ExpectedVersion)
		}
		if r.CheckFence && s.fenceLast[r.FencePartition] != r.FenceHead {
			return fmt.Errorf("%w: partition %d's fence is at %d, not %d", ledger.ErrConflict, r.FencePartition, s.fenceLast[r.FencePartition], r.FenceHead)
		}
	}
	return nil
}

// Fence stores the ownership records, all or none, each only if its partition's last one is
// still at its Expect.
func (s *Store) Fence(_ context.Context, claims []ledger.FenceClaim) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := make([][]byte, len(claims))
	seen := map[int]bool{}
	for i, c := range claims {
		p := c.Fence.Partition
		if seen[p] {
			return nil, fmt.Errorf("two ownership records for partition %d in one write", p)
		}
		seen[p] = true
		if s.fenceLast[p] != c.Expect {
			return nil, fmt.Errorf("%w: partition %d's fence is at %d, not %d", ledger.ErrConflict, p, s.fenceLast[p], c.Expect)
		}
		var err error
		if data[i], err = ledger.EncodeFence(c.Fence); err != nil {
			return nil, err
		}
	}
	pos := make([]uint64, len(claims))
	for i, c := range claims {
		pos[i] = uint64(len(s.recs)) + 1
		s.recs = append(s.recs, ledger.Record{Data: data[i], Position: pos[i]})
		s.fences[pos[i]] = c.Fence.Partition
		s.fenceLast[c.Fence.Partition] = pos[i]
	}
	return pos, nil
}

// FenceHeads returns the position of the last ownership record of each partition in ps (0 if
// none), in order, as of one moment (under the store's lock).
func (s *Store) FenceHeads(_ context.Context, ps []int) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	heads := make([]uint64, len(ps))
	for i, p := range ps {
		heads[i] = s.fenceLast[p]
	}
	return heads, nil
}

// Fingerprints returns the fingerprint of the message at each position (ledger.MessageFingerprint
// over the account id and the data, an ownership record's key being "fence.<p>"), nil past the head.
func (s *Store) Fingerprints(_ context.Context, ps []uint64) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(ps))
	for i, pos := range ps {
		if pos < 1 || pos > uint64(len(s.recs)) {
			continue
		}
		r := s.recs[pos-1]
		key := r.AccountID
		if p, fence := s.fences[pos]; fence {
			key = "fence." + strconv.Itoa(p)
		}
		out[i] = ledger.MessageFingerprint(key, r.Data)
	}
	return out, nil
}

// FingerprintsNear (ledger.NearReader) is Fingerprints: one copy has no replica behind it.
func (s *Store) FingerprintsNear(ctx context.Context, ps []uint64) ([][]byte, error) {
	return s.Fingerprints(ctx, ps)
}

// ReadNear (ledger.NearReader) is Read: one copy has no replica behind it.
func (s *Store) ReadNear(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	return s.Read(ctx, from, fn)
}

// Read calls fn for every record from position from up to the head at the time of the call.
func (s *Store) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	s.mu.Lock()
	recs := s.recs
	fences := make(map[uint64]bool, len(s.fences))
	for p := range s.fences {
		fences[p] = true
	}
	s.mu.Unlock()
	head := uint64(len(recs))
	if from < 1 {
		from = 1
	}
	for p := from; p <= head; p++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if fences[p] {
			continue // an ownership record, not an event
		}
		if err := fn(recs[p-1]); err != nil {
			return 0, err
		}
	}
	return head, nil
}

// KeepPartitionsApart makes the store report that it reads partitions apart, as the JetStream
// store with partitioned subjects does (a writer then claims every id it creates).
func (s *Store) KeepPartitionsApart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apart = true
}

// PartitionsApart reports whether KeepPartitionsApart was called.
func (s *Store) PartitionsApart() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apart
}

// ReadPartitions calls fn for every record of an account in partitions ps (of n) from position
// from up to the head at the time of the call.
func (s *Store) ReadPartitions(ctx context.Context, from uint64, n int, ps []int, fn func(ledger.Record) error) (uint64, error) {
	want := make(map[int]bool, len(ps))
	for _, p := range ps {
		want[p] = true
	}
	return s.Read(ctx, from, func(r ledger.Record) error {
		if !want[ledger.PartitionOf(r.AccountID, n)] {
			return nil
		}
		return fn(r)
	})
}

// ReadAccount returns one account's records from version from, in order (ownership records,
// which belong to no account, are not among them).
func (s *Store) ReadAccount(_ context.Context, accountID string, from uint64) ([]ledger.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ledger.Record
	for _, r := range s.recs {
		if _, fence := s.fences[r.Position]; !fence && r.AccountID == accountID && r.Version >= from {
			out = append(out, r)
		}
	}
	return out, nil
}

// AccountVersion is the version of the account's last record (0 if none).
func (s *Store) AccountVersion(_ context.Context, accountID string) (uint64, error) {
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
	if p, ok := s.fences[position]; ok {
		return ledger.Record{}, fmt.Errorf("position %d holds partition %d's ownership record, not an event: %w", position, p, ledger.ErrNoRecord)
	}
	return s.recs[position-1], nil
}

var (
	_ ledger.Store      = (*Store)(nil)
	_ ledger.NearReader = (*Store)(nil)
)

// CommandClaims is a command-id record in memory (writer.CommandClaims) shared by the writers of
// a test; it passes the same contract (storetest.RunCommandClaims) as the JetStream bucket.
type CommandClaims struct {
	mu      sync.Mutex
	holders map[string]string
	fail    error
	asked   int
}

// FailWith makes every later claim return err (a record that cannot be reached); nil mends it.
func (c *CommandClaims) FailWith(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

// ClaimCommands makes accounts[i] the holder of commandIDs[i] unless another account holds it.
func (c *CommandClaims) ClaimCommands(_ context.Context, commandIDs, accounts []string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return nil, c.fail
	}
	if c.holders == nil {
		c.holders = map[string]string{}
	}
	c.asked += len(commandIDs)
	out := make([]string, len(commandIDs))
	for i, id := range commandIDs {
		if h, ok := c.holders[id]; ok {
			out[i] = h
			continue
		}
		c.holders[id], out[i] = accounts[i], accounts[i]
	}
	return out, nil
}

// Asked counts the command ids claimed so far.
func (c *CommandClaims) Asked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked
}
