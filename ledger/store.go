package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrConflict means an append was refused because an account is no longer at the version the
// writer expected (another writer, or a message that did not come from this process), or a
// partition's fence moved.
var ErrConflict = errors.New("append conflict: account version moved")

// ErrUncertain means the store may or may not have applied an append (a timeout or a lost
// connection after sending); the caller must re-read the accounts before deciding again.
var ErrUncertain = errors.New("append outcome unknown")

// Record is one stored event message: its account, its encoded envelope, its version in the
// account and, once stored, its position in the store's total order.
type Record struct {
	AccountID string
	Data      []byte
	// Position is the record's place in the store's one total order (set by the store): what
	// projections, queries and replies count in. It says nothing about the account's version.
	Position uint64
	// Version is the record's event version in its account (1, 2, ... with no gap). The caller
	// of Append sets it; ReadAccount returns it (0 for a stored message whose version cannot
	// be read); Read and ReadAt leave it 0 (the envelope in Data carries it).
	Version uint64
	// CheckVersion asks the store to refuse the whole append unless the account's last stored
	// version is still ExpectedVersion (0: the account has no record). Set it on an account's
	// first record in an append, whose Version is then ExpectedVersion+1.
	CheckVersion    bool
	ExpectedVersion uint64
	// CheckFence asks the store to refuse the whole append unless the last ownership record of
	// partition FencePartition is still at FenceHead: the writer's partition fence. A store can
	// check one expectation per record, so CheckFence and CheckVersion exclude each other; the
	// writer puts the fence on one record of each partition in the append.
	CheckFence     bool
	FencePartition int
	FenceHead      uint64
}

// FenceClaim is one ownership record to store, and the position its partition's last ownership
// record must still be at (0: the partition has none) for the store to take it.
type FenceClaim struct {
	Fence  Fence
	Expect uint64
}

// ErrBothChecks means a record asks for a version check and a fence check at once, which no
// store can honour in one message.
var ErrBothChecks = errors.New("record carries both a version check and a fence check")

// ErrMalformedAppend means an append's records break the version rules every store relies on:
// each record has a version, an account's records in one append have consecutive versions, and
// only an account's first record may check its version, which must then be the expected one's
// successor.
var ErrMalformedAppend = errors.New("malformed append")

// CheckAppend is the precondition every store checks before an append.
func CheckAppend(recs []Record) error {
	last := make(map[string]uint64, len(recs))
	for i, r := range recs {
		prev, seen := last[r.AccountID]
		switch {
		case r.CheckVersion && r.CheckFence:
			return fmt.Errorf("account %s: %w", r.AccountID, ErrBothChecks)
		case r.Version == 0:
			return fmt.Errorf("%w: record %d of account %s has no version", ErrMalformedAppend, i, r.AccountID)
		case seen && r.Version != prev+1:
			return fmt.Errorf("%w: account %s goes from version %d to %d", ErrMalformedAppend, r.AccountID, prev, r.Version)
		case seen && r.CheckVersion:
			return fmt.Errorf("%w: account %s checks its version on record %d, not its first", ErrMalformedAppend, r.AccountID, i)
		case r.CheckVersion && r.Version != r.ExpectedVersion+1:
			return fmt.Errorf("%w: account %s expects version %d and appends %d", ErrMalformedAppend, r.AccountID, r.ExpectedVersion, r.Version)
		}
		last[r.AccountID] = r.Version
	}
	return nil
}

// Store is the event store contract, in the domain's terms: atomic multi-record appends with
// per-account optimistic concurrency on the account's version, reads of one account by version,
// and reads of everything in one total order (positions). JetStream implements it, and an
// in-memory store; ledger/storetest is the contract both pass.
type Store interface {
	// Append stores all records or none and returns their positions, in order. ErrConflict: an
	// expected version or fence no longer holds, and nothing is stored. ErrUncertain: the
	// outcome is unknown (all or nothing was stored).
	Append(ctx context.Context, recs []Record) ([]uint64, error)
	// Read calls fn for every record from position from up to the head at the time of the call.
	Read(ctx context.Context, from uint64, fn func(Record) error) (head uint64, err error)
	// ReadAccount returns one account's records in order, from its first record whose version
	// is at least from to its last (all of them when from is 0 or 1), each with its Version.
	ReadAccount(ctx context.Context, accountID string, from uint64) ([]Record, error)
	// AccountVersion is the version of the account's last record (0 if it has none); an error
	// when that record's version cannot be read.
	AccountVersion(ctx context.Context, accountID string) (uint64, error)
	// ReadAt returns the record at position; ErrNoRecord if there is none.
	ReadAt(ctx context.Context, position uint64) (Record, error)
	// Fence stores the ownership records of claims, all or none, each only if its partition's
	// last ownership record is still at its Expect (ErrConflict otherwise); it returns their
	// positions, in order. Reads skip ownership records: they are not events.
	Fence(ctx context.Context, claims []FenceClaim) ([]uint64, error)
	// FenceHeads returns the position of the last ownership record of each partition in ps (0
	// for one that has none), in the order of ps, read together (one request where the store
	// can). The read comes after every write that finished before the call began: an ownership
	// record stored by then is seen, whichever replica answers (the writer's rejection answers
	// rely on it, writer/rejections.go).
	FenceHeads(ctx context.Context, ps []int) ([]uint64, error)
	// Fingerprints returns, for each position in ps and in that order, the fingerprint of the
	// message the store holds there, an event or an ownership record (MessageFingerprint over
	// what identifies it in the store), or nil where it holds none (past its head, or removed).
	// The read comes after every write that finished before the call began, whichever replica
	// answers: a nil is never a replica's lag. A writer snapshot records the fingerprint at its
	// head, so that a load tells a snapshot of another history (the stream was recreated) from
	// one of this store's (writer/snapident.go).
	Fingerprints(ctx context.Context, ps []uint64) ([][]byte, error)
}

// MessageFingerprint is the fingerprint of a stored message (Store.Fingerprints): SHA-256 over the
// length of its key (uvarint), its key and its data. The key is what the store files the message
// under: its JetStream subject, or, in the in-memory store, the account id (an
// ownership record's: "fence.<p>"). Two messages with the same key and data are the same message.
func MessageFingerprint(key string, data []byte) []byte {
	h := sha256.New()
	_, _ = h.Write(binary.AppendUvarint(nil, uint64(len(key))))
	_, _ = h.Write([]byte(key))
	_, _ = h.Write(data)
	return h.Sum(nil)
}

// PartitionReader is a Store that reads some partitions' records without reading the others'
// (the JetStream store with partitioned subjects: one subject filter a partition). A writer that
// holds some partitions reads only theirs when it loads or catches up; since it then never sees
// an id that another partition's account created, it reserves every id it creates in the shared
// claims, also while it holds every partition (writer/claims.go).
type PartitionReader interface {
	// PartitionsApart reports whether ReadPartitions reads the partitions asked for without the
	// others' (false: it reads every record and passes on theirs only).
	PartitionsApart() bool
	// ReadPartitions calls fn for every record of an account whose partition among n is in ps,
	// from position from up to the head at the time of the call, which it returns (whatever that
	// position holds). Each partition's records come in position order (so each account's do);
	// the records of different partitions may come one partition after another.
	ReadPartitions(ctx context.Context, from uint64, n int, ps []int, fn func(Record) error) (uint64, error)
}

// PartitionReadShare is how small a share of the partitions a PartitionReader reads apart (at
// most one n-th of them, 8 of 64, one partition after another); a larger share is read with the
// whole stream, the others' records passed over. Measured on a three-node cluster (53,000 events
// of 20,000 accounts, docs/bench/partread): the whole stream in 0.25-0.55 s; one partition with
// direct gets on its subjects in 28-51 ms, 8 one after another in 0.20-0.38 s, 16 in 0.39-0.55 s
// (the server finds a partition's next event in its per-subject index, about five times the cost
// of the stream's next message). One consumer with a filter per partition was slower still: 12
// filters 0.9-1.2 s, 40 in 11.5 s.
const PartitionReadShare = 8

// NearReader is a Store that can replay its records without waiting for its leader: from the
// leader when it answers at once, else from what the nearest replica holds, which may be behind
// the head (the JetStream store in a cluster, with direct gets). A node that takes partitions over loads them this way while their ownership records are
// being written, which waits for the stream's leader (an election, when the leader died), and
// then reads the rest from the leader (writer.Writer.Preload, then CatchUp).
type NearReader interface {
	// ReadNear calls fn for every record from position from on, in position order, up to the last
	// position the copy it reads holds, which it returns (whatever that position holds). Every
	// record from from up to that position is passed; records after it may exist. On a store
	// with no replicas it reads what Read reads.
	ReadNear(ctx context.Context, from uint64, fn func(Record) error) (uint64, error)
	// FingerprintsNear is Fingerprints without waiting for the leader: from the leader when it
	// answers at once, else from the replica that answers. A fingerprint it returns is the
	// message's (every copy of a position holds the same message), but a nil may only mean that
	// the copy that answered does not hold that position yet.
	FingerprintsNear(ctx context.Context, ps []uint64) ([][]byte, error)
}

// VersionHints is what a store that enforces versions through positions of its own (the
// JetStream store) may be told by a caller that loaded accounts from it (a writer's snapshot and
// replay): account id stands at version, at position. A store that is told spares itself a read
// of the account's last message on its next append; a wrong hint costs a refused append, never a
// wrong one, because the store still has the position checked.
type VersionHints interface {
	HintVersion(accountID string, version, position uint64)
}

// ErrNoRecord means a store holds nothing at the position asked for.
var ErrNoRecord = errors.New("no record at that position")

// Rejection is a business rejection remembered so a retry of the same command_id gets the same
// answer; it is not an event (it changed no account), so stores keep it apart from the stream.
type Rejection struct {
	CommandID string
	AccountID string
	BodyHash  string
	Err       *Error
}

// RejectionAt is where a rejection log keeps one rejection, so that a writer can forget it and
// read it back when its command_id comes again: the position of the entry that holds it (a log
// may keep a round's rejections together) and its index within that entry. Position 0 is none.
type RejectionAt struct {
	Position uint64
	Index    int
}

// Revocation withdraws a stored rejection that was never answered (its writer lost the
// partition, or could not confirm it still held it, once the rejection was durable): a writer
// that loads the log later must not replay it. It names the rejection's exact place, so a later
// rejection of the same command_id (another decision, which was answered) is left alone.
type Revocation struct {
	CommandID string
	At        RejectionAt
}
