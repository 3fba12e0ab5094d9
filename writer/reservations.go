package writer

import (
	"context"
	"fmt"
	"sort"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Reservations are the shared claims a store's events imply: what a lost LEDGER_IDS bucket is
// rebuilt from (server.RebuildReservations).
type Reservations struct {
	// IDs maps every unique id an event created ("license:L-1", "payg:C-1") to the account that
	// created it (claims are never released, so an id stays with its first account).
	IDs map[string]string
	// Subscriptions maps every marketplace subscription ever linked to its claim as of the
	// store's head: Holder the account holding it ("" once unlinked), Previous the one before.
	Subscriptions map[string]SubscriptionClaim
	// Head is the position read up to; Undecodable counts the records that could not be read
	// (an account whose history is broken: its ids are not implied).
	Head        uint64
	Undecodable int
}

// ReservationsOf reads the whole store and returns the claims its events imply. Two accounts
// creating one id is a broken history (the writer never allows it): the first keeps it and the
// second is returned in the error's list, and nothing else is wrong with the result.
func ReservationsOf(ctx context.Context, st ledger.Store) (Reservations, []string, error) {
	r := Reservations{IDs: map[string]string{}, Subscriptions: map[string]SubscriptionClaim{}}
	var clashes []string
	head, err := st.Read(ctx, 1, func(rec ledger.Record) error {
		ev, err := events.Decode(rec.Data)
		if err != nil || ev.AccountID != rec.AccountID {
			r.Undecodable++
			return nil
		}
		for _, id := range createdIDs(ev.Data) {
			switch holder, ok := r.IDs[id]; {
			case !ok:
				r.IDs[id] = rec.AccountID
			case holder != rec.AccountID:
				clashes = append(clashes, fmt.Sprintf("%s created by %s at position %d, held by %s", displayID(id), rec.AccountID, rec.Position, holder))
			}
		}
		switch e := ev.Data.(type) {
		case events.SubscriptionLinked:
			c := r.Subscriptions[e.SubscriptionID]
			if c.Holder != "" && c.Holder != rec.AccountID {
				c.Previous = c.Holder
			}
			if e.PreviousAccountID != "" {
				c.Previous = e.PreviousAccountID
			}
			c.Holder = rec.AccountID
			r.Subscriptions[e.SubscriptionID] = c
		case events.SubscriptionUnlinked:
			if c := r.Subscriptions[e.SubscriptionID]; c.Holder == rec.AccountID {
				c.Holder, c.Previous = "", rec.AccountID
				r.Subscriptions[e.SubscriptionID] = c
			}
		}
		return nil
	})
	if err != nil {
		return Reservations{}, nil, fmt.Errorf("read the store: %w", err)
	}
	r.Head = head
	sort.Strings(clashes)
	return r, clashes, nil
}
