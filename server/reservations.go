package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// Rebuilt says what RebuildReservations wrote.
type Rebuilt struct {
	// Head is the LEDGER position the reservations were read up to.
	Head uint64
	// IDs counts the ids reserved for the account that created them (written, or found so);
	// Subscriptions the subscription claims written, Kept those found in place. Clashes lists
	// ids reserved for another account, or created by two accounts in the stream, and
	// subscription claims that name another holder than the stream: all left as they are.
	IDs, Subscriptions, Kept int
	Clashes                  []string
	// Undecodable counts the events that could not be read (their ids are not reserved).
	Undecodable int
}

// ErrReservationsKept means the reservation bucket holds its mark: nothing was lost, and a
// rebuild would only race the running nodes.
var ErrReservationsKept = errors.New("the id reservations are not lost (the bucket holds its mark); nothing to rebuild")

// RebuildReservations writes into LEDGER_IDS the reservations the LEDGER stream's events imply
// (writer.ReservationsOf: every unique id for the account that created it, every marketplace
// subscription's holder) and then the mark that lets the nodes start again (they refuse to while
// it is missing: jetstore.ErrClaimsLost). Run it with every ledger process stopped: a node cannot
// start meanwhile, and a node still running from before the loss would be claiming ids in the
// bucket while it is rebuilt. It refuses a bucket that holds its mark (ErrReservationsKept).
func RebuildReservations(ctx context.Context, nc *nats.Conn, now time.Time) (Rebuilt, error) {
	// A maintenance command: it must not make the stream (jetstore.Open would, on a server that
	// has none, say a wrong --nats-url, and then mark an empty bucket beside it).
	st, err := jetstore.OpenExisting(ctx, nc, jetstore.Config{})
	if err != nil {
		return Rebuilt{}, err
	}
	// A bucket that is missing is made with the stream's replicas (a cluster's count).
	claims, err := jetstore.OpenClaims(ctx, st.JetStream(), st.Replicas())
	if err != nil {
		return Rebuilt{}, err
	}
	if kept, err := claims.Kept(ctx); err != nil || kept {
		if err == nil {
			err = ErrReservationsKept
		}
		return Rebuilt{}, err
	}
	res, clashes, err := writer.ReservationsOf(ctx, st)
	if err != nil {
		return Rebuilt{}, err
	}
	out := Rebuilt{Head: res.Head, Clashes: clashes, Undecodable: res.Undecodable}
	for id, acct := range res.IDs {
		holder, err := claims.Claim(ctx, id, acct)
		switch {
		case err != nil:
			return out, err
		case holder != acct:
			out.Clashes = append(out.Clashes, fmt.Sprintf("%s: reserved for %s, created by %s", id, holder, acct))
		default:
			out.IDs++
		}
	}
	subs := subscriptionClaims{claims}
	for id, c := range res.Subscriptions {
		cur, err := subs.Subscription(ctx, id)
		if err != nil {
			return out, err
		}
		if cur.Revision != 0 {
			out.Kept++
			if cur.Holder != c.Holder {
				out.Clashes = append(out.Clashes, fmt.Sprintf("subscription %s: claim names %q, the stream %q", id, cur.Holder, c.Holder))
			}
			continue
		}
		c.At = now
		if _, err := subs.ClaimSubscription(ctx, id, c, 0); err != nil {
			return out, err
		}
		out.Subscriptions++
	}
	if err := claims.MarkKept(ctx); err != nil {
		return out, err
	}
	return out, nil
}
