package writer

import (
	"github.com/creditledger/creditledger/commands/submit"
)

// request is one command in the writer: what the command service handed over (Submit) and what
// the writer keeps of it while deciding.
type request struct {
	submit.Request

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
	// notRejCompact skips the compact form of rejections: the read-back found the entry to be
	// another command's rejection, or gone past the log's retention (rejcompact.go).
	notRejCompact bool
	// fenced is set while the command is decided on its partition's fence alone (fenced.go):
	// only an append may answer it.
	fenced bool
	// sub is what a subscription link or unlink has read and written beside the loop so far
	// (substep.go); nil for every other command.
	sub *subStep
	// commandClaimed: the shared store holds the command id for this account (commandclaims.go).
	commandClaimed bool
}

// EventRef names one appended event in a result (submit.EventRef, the wire type).
type EventRef = submit.EventRef

// Result is the outcome the writer answers a request with (submit.Result).
type Result = submit.Result

// commandRecord is what the writer remembers of an accepted command, for idempotent replies.
type commandRecord struct {
	accountID string
	bodyHash  string
	result    Result
}
