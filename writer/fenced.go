package writer

import "github.com/creditledger/creditledger/ledger"

// Writing through a lease-store outage (docs/OPERATIONS.md, "When the lease bucket's leader is
// lost"): while a partition's lease cannot be renewed because the lease store does not answer,
// the lease clock no longer vouches for the partition, but its fence still does for appends.

// FencedOwner is implemented by an Ownership that lets the writer keep deciding for a partition
// whose lease could not be renewed because the lease store did not answer, as far as the
// partition fence (Fences) vouches for the answer. An append carries the fence, which the
// server checks: it lands only while no other node has taken the partition over, since another
// node must acquire the lease and write a newer ownership record before it appends. A
// rejection is stored in another stream, but is answered only once a read of the fence after
// its write finds the fence unmoved (finishRejections): that read is its guard, on the fence
// alone as under the lease. An answer from memory that nothing written carries (a command that
// changes nothing, a stale expected_version, any rejection that is not stored) and a
// subscription link (claims, accounts of other partitions) have no such guard: a command
// admitted on the fence alone whose answer would be one of those is passed on
// (Result.Redirect), and is decided once the lease is renewed.
type FencedOwner interface {
	// OwnsFenced reports whether the writer may append for the account now: Owns, or its
	// partition's lease could not be renewed for want of an answer from the lease store and its
	// fence is still this writer's.
	OwnsFenced(accountID string) bool
}

// stillOwns is the ownership check a rejection's answer makes after the fence read
// (finishRejections), belt and braces: the lease clock, or, for a command decided on the fence
// alone, the fence ownership (the read after the write vouches for either).
func (w *Writer) stillOwns(r *request) bool {
	if !r.fenced {
		return w.owns(r.AccountID)
	}
	fo, ok := w.opts.Owner.(FencedOwner)
	return ok && fo.OwnsFenced(r.AccountID)
}

// admit reports whether the writer may decide r now, and notes in r.fenced whether only the
// fence vouches for it: the lease clock says no (Ownership.Owns) and the owner's fence says yes
// (FencedOwner). Subscription links and unlinks wait for the lease: they read and write the
// subscription claims and may read accounts of other partitions, which no fence covers.
func (w *Writer) admit(r *request) bool {
	r.fenced = false
	if w.owns(r.AccountID) {
		return true
	}
	fo, ok := w.opts.Owner.(FencedOwner)
	if !ok || !fo.OwnsFenced(r.AccountID) {
		return false
	}
	switch r.Command.(type) {
	case ledger.LinkSubscription, ledger.UnlinkSubscription:
		return false
	}
	r.fenced = true
	return true
}
