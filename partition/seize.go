package partition

import (
	"context"
	"slices"
	"time"
)

// A member proven down by the liveness probe (liveness.go) has its leases seized rather than
// waited out. "No responders" proves only that the prober's server knows no subscription of the
// member, not that it is dead: a member whose server's routes closed (cut off, or one route
// reconnecting, seen by both of its ends at once) is proven down too, and it may go on renewing
// its leases through the other servers, or answer its own clients from memory while its lease
// clock runs. So a lease is seized only once its key has not moved for idleSpan since this node
// first read it naming a member proven down (a member that renews is never seized from, however
// its probes answer), and a seized partition counts as owned only once the lease clock of the
// member it was seized from has surely run out.

// idleSpan is how long a lease key of a member proven down must stay at one revision, on this
// node's clock, before it is seized: two ticks, two renewals missed (a live member renews every
// tick; one a little late, its step slowed by a probe or a hand-over, is not taken for dead).
func (k *Keeper) idleSpan() time.Duration { return 2 * k.cfg.Tick }

// idleLease is a lease key of a member proven down as this node first read it at one revision:
// at is this node's clock when that read returned.
type idleLease struct {
	rev uint64
	at  time.Time
}

// seize takes p's lease from the member proven down that holds it (seizable), once its key has
// not moved for idleSpan, and says from when the lease may count as owned. The member's last
// renewal landed before this node's first read of that revision returned (at), and its lease
// clock runs out TTL less the margin after it sent that renewal, on its own clock: so before at
// plus TTL less the margin on this one. Until then the partition is held (its fence is moved, so
// the old holder's appends fail, and it is loaded) but not owned: nothing is decided for it that
// could contradict an answer the old holder, if alive, gives from memory. ErrHeld: not (yet).
func (k *Keeper) seize(ctx context.Context, p int) (uint64, time.Time, error) {
	from := k.seizable()
	if len(from) == 0 {
		return 0, time.Time{}, ErrHeld
	}
	holder, rev, err := k.cfg.Leases.Holder(ctx, p)
	now := k.cfg.Now()
	if err != nil {
		return 0, time.Time{}, err
	}
	if rev == 0 || !slices.Contains(from, holder) {
		delete(k.idle, p)
		return 0, time.Time{}, ErrHeld
	}
	seen, ok := k.idle[p]
	if !ok || seen.rev != rev {
		k.idle[p] = idleLease{rev: rev, at: now}
		return 0, time.Time{}, ErrHeld
	}
	if now.Sub(seen.at) < k.idleSpan() {
		return 0, time.Time{}, ErrHeld
	}
	got, err := k.cfg.Leases.Seize(ctx, p, k.cfg.Node, rev)
	if err != nil {
		return 0, time.Time{}, err
	}
	delete(k.idle, p)
	return got, seen.at.Add(k.ttl - k.margin()), nil
}
