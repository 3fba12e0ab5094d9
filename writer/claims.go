package writer

import (
	"context"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// claimTimeout bounds one reservation round trip.
const claimTimeout = 5 * time.Second

// IDClaims reserves ids that must be unique across all accounts (license ids, marketplace item ids,
// PAYG contract ids) in a store every ledger process shares. The writer's own owner index only
// knows the accounts it holds; the accounts of other partitions are written by other nodes, so
// without a shared reservation two of them could accept the same license id for two accounts.
type IDClaims interface {
	// Claim records accountID as the holder of id unless an account already holds it, and
	// returns the holder. Claiming an id the same account already holds succeeds.
	Claim(ctx context.Context, id, accountID string) (holder string, err error)
}

// claimIDs checks every unique id the payloads create against the claims store before they are
// appended. An id the account already owns in memory needs no round trip, nor does one whose
// holder a claim has already told (a reservation is never released: if the append then fails
// for good, the id stays with the account that tried, which may buy it again; another account
// gets already_exists, which errs on the side of never letting two accounts hold one id). The
// others are claimed beside the loop (claimBeside) and r is decided again afterwards: errHeld.
func (w *Writer) claimIDs(r *request, payloads []events.Payload) error {
	if w.opts.Claims == nil {
		return nil
	}
	var unknown []string
	checked := false
	for _, p := range payloads {
		for _, id := range createdIDs(p) {
			// Asked only for a command that creates an id: OwnsEverything looks at every
			// partition's lease (under the keeper's lock), which cost 44 % of plan in a profile
			// when asked for every command.
			if !checked {
				if w.apart == nil && w.opts.Owner != nil && w.opts.Owner.OwnsEverything() {
					// A cluster of one over a store read whole: the owner index knows every id (a
					// round trip saved). Over a store that keeps partitions apart the claims are
					// the only cluster-wide record of ids: a node that takes partitions over later
					// reads only theirs, never the ids this one's accounts took.
					return nil
				}
				checked = true
			}
			if w.cache.owners[id] == r.AccountID {
				continue
			}
			holder, ok := w.claimed[id]
			switch {
			case !ok:
				unknown = append(unknown, id)
			case holder != r.AccountID:
				return ledger.Reject(ledger.CodeAlreadyExists, "%s is held by another account", displayID(id))
			}
		}
	}
	if len(unknown) > 0 {
		w.claimBeside(r, unknown)
		return errHeld
	}
	return nil
}
