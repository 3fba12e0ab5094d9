package writer

import (
	"fmt"
	"strconv"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// historyBreak is where and how an account's stored history stops being a chain the writer can
// continue: a gap in its versions, a foreign or undecodable message on its subject, or an event
// whose hash or prev_hash does not link. An account with one takes no commands (history_broken)
// and the writer never appends to it again: a new event would hide the break (or start a second
// chain) in a stream nothing can be deleted from.
type historyBreak struct {
	position uint64
	reason   string
}

func (b *historyBreak) Error() string { return fmt.Sprintf("position %d: %s", b.position, b.reason) }

// refusal is the answer to a command on the account.
func (b *historyBreak) refusal(accountID string) *ledger.Error {
	e := ledger.Reject(ledger.CodeHistoryBroken,
		"account %s: stored history breaks at position %d (%s); refusing commands until an operator investigates",
		accountID, b.position, b.reason)
	e.Data = map[string]string{"position": strconv.FormatUint(b.position, 10)}
	return e
}

// nextEvent decodes the record that follows the account's last one and checks that it continues
// the account's chain: its own account, the next version, a prev_hash equal to the last event's
// hash (the zero hash for version 1) and a hash that matches its content. prevPosition is the
// position of the account's last record (0 if none); a version that skips names the positions
// between it and this record, where the missing events were.
func nextEvent(a *account, prevPosition uint64, r ledger.Record) (events.Event, *historyBreak) {
	ev, err := events.Decode(r.Data)
	if err != nil {
		return ev, &historyBreak{position: r.Position, reason: "foreign or undecodable message: " + err.Error()}
	}
	want, prev := a.state.Version+1, a.hash
	if a.state.Version == 0 {
		prev = events.ZeroHash
	}
	switch {
	case ev.AccountID != r.AccountID:
		return ev, &historyBreak{position: r.Position, reason: fmt.Sprintf("event of account %q stored on this account's subject", ev.AccountID)}
	case ev.Version > want:
		return ev, &historyBreak{position: r.Position, reason: fmt.Sprintf(
			"version %d where %d was expected: events are missing between positions %d and %d", ev.Version, want, prevPosition, r.Position)}
	case ev.Version != want:
		return ev, &historyBreak{position: r.Position, reason: fmt.Sprintf("version %d where %d was expected", ev.Version, want)}
	case ev.PrevHash != prev:
		return ev, &historyBreak{position: r.Position, reason: fmt.Sprintf("prev_hash does not match the hash of version %d: the chain is broken", want-1)}
	case !ev.VerifyHash():
		return ev, &historyBreak{position: r.Position, reason: "the event's hash does not match its content"}
	}
	return ev, nil
}
