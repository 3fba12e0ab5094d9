package writer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// Fences is the writer's view of the partition fences (the server's node implements it): the
// ownership record of each partition it owns, which every append must still find last on the
// partition's fence subject, so that the server itself refuses an append once another node
// has taken the partition over.
type Fences interface {
	// Fence returns the account's partition and the position of the ownership record this
	// writer's appends for it must expect; ok is false when the writer holds no fence for it.
	Fence(accountID string) (partition int, position uint64, ok bool)
	// Lost says that partition p's ownership record moved (another node took it over): the
	// writer must not decide for its accounts again (Ownership.Owns is false from now on).
	Lost(p int)
}

// carryFences puts each partition's fence check on at most one record of the append. nats-server
// checks one expected subject sequence per message, so the check rides on a record that needs
// none of its own when there is one (not its account's first record in the append: that one
// carries the account's version check). When every account of the partition has a single record
// here, the first such account's record carries the fence in place of its version check: that
// account is then guarded by the fence alone (only the fence holder appends to it, and it decides
// from the version it holds), the others by their versions as before. An account that holds a
// marketplace subscription (shared(accountID)) is no such account: another node moving the
// subscription away appends to it under its version check alone (subclaims.go), so its record
// keeps its version check; nor is one whose earlier append may still land (keepsVersionCheck).
// A partition whose records are all such lone records carries no fence in this append (each of
// its accounts is checked on its version).
func carryFences(recs []ledger.Record, fenceOf func(accountID string) (int, uint64, bool), shared func(accountID string) bool) {
	type carrier struct {
		at       int
		position uint64
		spare    bool // the record carries no version check of its own
	}
	chosen := map[int]*carrier{}
	for i := range recs {
		p, pos, ok := fenceOf(recs[i].AccountID)
		if !ok {
			continue
		}
		spare := !recs[i].CheckVersion
		if !spare && shared != nil && shared(recs[i].AccountID) {
			continue // keeps its version check
		}
		c := chosen[p]
		switch {
		case c == nil:
			chosen[p] = &carrier{at: i, position: pos, spare: spare}
		case !c.spare && spare:
			c.at, c.spare = i, true
		}
	}
	for p, c := range chosen {
		r := &recs[c.at]
		r.CheckVersion, r.ExpectedVersion = false, 0
		r.CheckFence, r.FencePartition, r.FenceHead = true, p, c.position
	}
}

// keepsVersionCheck reports whether an account's record must keep its version check rather
// than carry the partition fence in its place (carryFences): it holds a marketplace subscription
// (another node may append to it), or an earlier append of it failed uncertain and may still land
// (inFlight.noteUnsure). That append expects only the fence, which a retry does not move, so a
// retry guarded by the fence alone would land beside it; one that expects the account's head is
// refused once the late append is stored or while the stream leader holds it in flight.
func (w *Writer) keepsVersionCheck(accountID string) bool {
	return w.flight.isUnsure(accountID) || w.holdsASubscription(accountID)
}

// fenceReadTimeout bounds one read of the fence heads (movedFences).
const fenceReadTimeout = 5 * time.Second

// fencesMoved reads the fence of every partition the plans' accounts are in and returns the
// partitions whose ownership record is no longer the one this writer expects. Fences that
// cannot be read count as not moved: the append is then re-decided as an account conflict,
// and the next append finds out.
func fencesMoved(ctx context.Context, store ledger.Store, fences Fences, plans []planned) map[int]bool {
	expected := map[int]uint64{}
	for _, p := range plans {
		if part, pos, ok := fences.Fence(p.req.AccountID); ok {
			expected[part] = pos
		}
	}
	moved, _ := movedFences(ctx, store, expected)
	return moved
}

// movedFences reads the fence heads of the partitions in expected, all in one store call
// (ledger.Store.FenceHeads), and returns the partitions whose last ownership record is not the
// expected one. Nothing expected costs nothing.
func movedFences(ctx context.Context, store ledger.Store, expected map[int]uint64) (map[int]bool, error) {
	if len(expected) == 0 {
		return nil, nil
	}
	ps := make([]int, 0, len(expected))
	for p := range expected {
		ps = append(ps, p)
	}
	sort.Ints(ps)
	ctx, cancel := context.WithTimeout(ctx, fenceReadTimeout)
	defer cancel()
	heads, err := store.FenceHeads(ctx, ps)
	if err != nil {
		return nil, err
	}
	if len(heads) != len(ps) {
		return nil, fmt.Errorf("the store read %d fence heads for %d partitions", len(heads), len(ps))
	}
	moved := map[int]bool{}
	for i, p := range ps {
		if heads[i] != expected[p] {
			moved[p] = true
		}
	}
	return moved, nil
}

// dropFenced handles the plans of a refused append whose partition was fenced: the partition
// is lost to this writer (Fences.Lost), and their commands go to its new owner (Redirect), not
// re-decided here. It returns the other plans.
func (w *Writer) dropFenced(plans []planned, lost map[int]bool) []planned {
	if len(lost) == 0 {
		return plans
	}
	rest := plans[:0:0]
	var moved []*request
	for _, p := range plans {
		part, _, _ := w.opts.Fences.Fence(p.req.AccountID)
		if !lost[part] {
			rest = append(rest, p)
			continue
		}
		if a, ok := w.cache.accounts[p.req.AccountID]; ok {
			a.stale = true // another node writes it now
		}
		if !isMoveSide(p.req) { // re-planned with the link that caused it
			moved = append(moved, p.req)
		}
	}
	// Given up before any answer goes out, as in finishRejections: a client redirected here must
	// not find this writer still claiming the partition (TestFencedOwnershipAnswersUnderTheFence
	// saw the redirect before Lost, 2 runs in 40).
	w.loseFenced(lost)
	for _, r := range moved {
		w.redirect(r)
	}
	return rest
}

// loseFenced tells Fences of the partitions whose fence moved: another node (or a newer writer
// of this one) fenced them, and this writer decides for their accounts no more.
func (w *Writer) loseFenced(lost map[int]bool) {
	for p := range lost {
		w.opts.Fences.Lost(p)
		w.opts.Log.Warn().Int("partition", p).Msg("partition fenced by another node; no longer deciding for it")
	}
}

// errFenced reports whether err refused an append in a way a moved fence explains (the server
// answers a failed fence check and a failed account check alike: wrong last sequence).
func errFenced(err error) bool { return errors.Is(err, ledger.ErrConflict) }
