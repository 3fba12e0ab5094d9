package jetstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// The store port speaks account versions; nats-server enforces an account's expected last
// message with Nats-Expected-Last-Subject-Sequence, a stream position. versions maps the one to
// the other: for each account, the version of its last event and that event's position, as this
// store last saw them (its own acknowledged appends, its reads). A pair is always true of the
// message it names, so a stale pair costs a conflict, never a wrong append: the server refuses
// an append whose account moved past the position sent. An account it does not know, or knows
// at another version than the caller expects, is read from the stream (its last message).
//
// Versions grow with positions within an account. A message read later that does not (a second
// message at the version known, a foreign publish) contradicts the pair held: the account's
// history is broken there, and the store reports it (errVersionOrder) rather than learn it, so
// that an append expecting that version is refused and its writer re-reads the account.
const (
	// maxVersions bounds the map; past it an arbitrary entry makes room (its account costs one
	// read of its last message on its next append).
	maxVersions = 1 << 18
	// maxVersionReads bounds the last-message reads one append makes at once.
	maxVersionReads = 16
)

// versionAt is an account's last version and the stream position of the message that holds it.
type versionAt struct {
	version, seq uint64
}

// versions is the bounded account -> (last version, last position) map.
type versions struct {
	mu   sync.Mutex
	last map[string]versionAt
}

func newVersions() *versions { return &versions{last: make(map[string]versionAt)} }

func (v *versions) get(account string) (versionAt, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	at, ok := v.last[account]
	return at, ok
}

// errVersionOrder means an account's message holds a version that does not grow with its
// position: its history is broken there.
var errVersionOrder = errors.New("account versions do not grow with positions")

// learn records that account's message at at.seq holds version at.version; a pair older than
// the one held (appends acknowledged out of order) is ignored, and one that contradicts it is
// refused (errVersionOrder) and not learned.
func (v *versions) learn(account string, at versionAt) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if have, ok := v.last[account]; ok {
		switch {
		case at == have:
			return nil
		case at.seq == have.seq || (at.seq > have.seq) != (at.version > have.version):
			return fmt.Errorf("%w: account %s holds version %d at position %d and version %d at %d",
				errVersionOrder, account, have.version, have.seq, at.version, at.seq)
		case at.seq < have.seq:
			return nil
		}
	}
	if len(v.last) >= maxVersions {
		for k := range v.last {
			delete(v.last, k)
			break
		}
	}
	v.last[account] = at
	return nil
}

// lastVersion reads the account's last message from the stream leader and learns its version:
// at.seq is 0 when the account has none. A last message whose version cannot be read is an error
// wrapping events.ErrNoVersion; one that contradicts what is known, errVersionOrder. When next
// (the envelope about to be appended) is given, the last message must also be the one next
// continues (its hash is next's prev_hash), else errChainBreak: a foreign message that repeats the
// version the caller expects is no ground to append on (the caller re-reads the account and
// finds the break).
func (s *Store) lastVersion(ctx context.Context, accountID string, next []byte) (versionAt, error) {
	seq, data, err := leaderLast(ctx, s.nc, StreamName, s.subjects.Of(accountID))
	if err != nil {
		return versionAt{}, fmt.Errorf("last message of %s: %w", accountID, err)
	}
	if seq == 0 {
		return versionAt{}, nil
	}
	l, err := events.LinkOf(data)
	if err != nil {
		return versionAt{}, fmt.Errorf("account %s, position %d: %w", accountID, seq, err)
	}
	if next != nil {
		if n, err := events.LinkOf(next); err == nil && n.PrevHash != l.Hash {
			return versionAt{}, fmt.Errorf("%w: account %s's last message (position %d) is not the event the append continues",
				errChainBreak, accountID, seq)
		}
	}
	at := versionAt{version: l.Version, seq: seq}
	if err := s.versions.learn(accountID, at); err != nil {
		return versionAt{}, err
	}
	return at, nil
}

// errChainBreak means an account's last stored message is not the one the record appended next
// names as its predecessor.
var errChainBreak = errors.New("account chain does not continue")

// expectedSeqs maps the expected version of every CheckVersion record to the position its
// account's last message must still be at: from the map, or (at most maxVersionReads at once)
// from the stream. An account not at the expected version refuses the append (ledger.ErrConflict)
// before anything is sent; so does one whose last message carries no readable version, or one
// that contradicts what is known.
func (s *Store) expectedSeqs(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	seqs := make([]uint64, len(recs))
	var misses []int
	for i, r := range recs {
		if !r.CheckVersion || r.ExpectedVersion == 0 {
			continue // a new account: the server checks that its subject holds nothing
		}
		if at, ok := s.versions.get(r.AccountID); ok && at.version == r.ExpectedVersion {
			seqs[i] = at.seq
			continue
		}
		misses = append(misses, i)
	}
	if len(misses) == 0 {
		return seqs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout) // the same bound as the append's
	defer cancel()
	errs := make([]error, len(misses))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxVersionReads)
	for j, i := range misses {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := recs[i]
			at, err := s.lastVersion(ctx, r.AccountID, r.Data)
			switch {
			case errors.Is(err, events.ErrNoVersion), errors.Is(err, errVersionOrder), errors.Is(err, errChainBreak):
				errs[j] = fmt.Errorf("%w: %v", ledger.ErrConflict, err)
			case err != nil:
				errs[j] = err
			case at.version != r.ExpectedVersion:
				errs[j] = fmt.Errorf("%w: account %s is at version %d, not %d", ledger.ErrConflict, r.AccountID, at.version, r.ExpectedVersion)
			default:
				seqs[i] = at.seq
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err // a conflict among them makes it one (errors.Is sees through Join)
	}
	return seqs, nil
}

// HintVersion learns that accountID stands at version, at position (ledger.VersionHints): a
// writer that loaded its accounts tells the store, so their first appends need no read of the
// last message. A hint that contradicts what is known is dropped.
func (s *Store) HintVersion(accountID string, version, position uint64) {
	if version == 0 || position == 0 {
		return
	}
	_ = s.versions.learn(accountID, versionAt{version: version, seq: position})
}

var _ ledger.VersionHints = (*Store)(nil)
