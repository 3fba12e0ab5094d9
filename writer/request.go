package writer

import (
	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/ledger"
)

// Request is one command handed to the writer. Reply is called exactly once, from the writer's
// goroutine, after the command's events are durable or the command is rejected.
type Request struct {
	CommandID     string
	AccountID     string
	CorrelationID string
	// BodyHash identifies the command's content for idempotency: a repeat of CommandID with a
	// different BodyHash is rejected with idempotency_key_reused.
	BodyHash        string
	ExpectedVersion *uint64
	Command         ledger.Command
	Reply           func(Result)

	attempts int
	sweep    bool
	internal bool
	// barrier, when set, is closed once no append is in flight (Writer.Barrier); handOver then
	// names partitions to snapshot first, and saved is closed once that save has ended.
	barrier  chan struct{}
	handOver []int
	saved    chan struct{}
	// forget, with a barrier, names partitions this writer no longer owns: their accounts are
	// dropped from memory (Writer.Forget).
	forget []int
	// notCompacted skips the compact idempotency form: a read-back found its entry to be
	// another command's (a hash collision), so the command is decided.
	notCompacted bool
}

// EventRef names one appended event in a reply; the wire type lives in api, which the command
// edge and the Go client share without linking the writer.
type EventRef = api.EventRef

// Result is the outcome of a command: the account's version and position after it, or an error.
type Result struct {
	AccountID string
	Version   uint64
	Position  uint64
	Events    []EventRef
	// Replayed is true when the reply repeats an earlier outcome of the same command_id.
	Replayed bool
	Err      *ledger.Error
	// Redirect is true when this writer did not decide the command because another node owns
	// the account's partition (or is taking it over): Err is then unavailable, and the command
	// service passes the request to the owner instead of replying.
	Redirect bool
}

// commandRecord is what the writer remembers of an accepted command, for idempotent replies.
type commandRecord struct {
	accountID string
	bodyHash  string
	result    Result
}
