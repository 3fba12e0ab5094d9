package ledger

import (
	"context"
	"errors"
)

// ErrConflict means an append was refused because an account's stream head moved since the
// writer last saw it (another writer, or a message that did not come from this process).
var ErrConflict = errors.New("append conflict: account head moved")

// ErrUncertain means the store may or may not have applied an append (a timeout or a lost
// connection after sending); the caller must re-read the accounts before deciding again.
var ErrUncertain = errors.New("append outcome unknown")

// Record is one stored event message: its account, its encoded envelope and, once stored, its
// position in the store's total order.
type Record struct {
	AccountID string
	Data      []byte
	Position  uint64
	// CheckHead asks the store to refuse the whole append unless the account's last stored
	// position is still Head. Set it on an account's first record in an append.
	CheckHead bool
	Head      uint64
	// CheckFence asks the store to refuse the whole append unless the last ownership record of
	// partition FencePartition is still at FenceHead: the writer's partition fence. A store can
	// check one expectation per record, so CheckFence and CheckHead exclude each other; the
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

// ErrBothChecks means a record asks for an account check and a fence check at once, which no
// store can honour in one message.
var ErrBothChecks = errors.New("record carries both a head check and a fence check")

// Store is the event store contract: atomic multi-record appends with per-account optimistic
// concurrency, and ordered reads. JetStream implements it; another store can be added behind it.
type Store interface {
	// Append stores all records or none and returns their positions, in order.
	Append(ctx context.Context, recs []Record) ([]uint64, error)
	// Read calls fn for every record from position from up to the head at the time of the call.
	Read(ctx context.Context, from uint64, fn func(Record) error) (head uint64, err error)
	// ReadAccount returns every record of one account, in order.
	ReadAccount(ctx context.Context, accountID string) ([]Record, error)
	// AccountHead is the position of the account's last record (0 if it has none).
	AccountHead(ctx context.Context, accountID string) (uint64, error)
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
