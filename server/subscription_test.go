package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
	"github.com/creditledger/creditledger/server"
)

func pgLink(account, sub string) commands.LinkSubscription {
	return commands.LinkSubscription{Meta: pgMeta(account), SubscriptionID: sub, Marketplace: ledger.MarketplaceAWS}
}

// pgAccount reads the account read model over NATS (waiting for minPosition) and checks that
// HTTP GET /v1/accounts/{id} answers the same.
func pgAccount(t *testing.T, l *testledger.Ledger, account string, minPosition uint64) projections.AccountView {
	t.Helper()
	var v projections.AccountView
	raw := pgQuery(t, l, projections.QueryAccount, map[string]any{"account_id": account, "min_position": minPosition}, &v)
	status, body := pgGet(t, l, "/v1/accounts/"+account)
	require.Equal(t, http.StatusOK, status, string(body))
	assert.JSONEq(t, string(raw), string(body), "NATS and HTTP answer the same")
	return v
}

// pgExpire moves the clock and runs the expiry processor until the account is expired. The sweep
// is asked again on every poll: it is idempotent, and one request must not depend on the writer
// waking up for it.
func pgExpire(t *testing.T, l *testledger.Ledger, account string) projections.AccountView {
	t.Helper()
	var v projections.AccountView
	require.Eventually(t, func() bool {
		l.Sweep()
		raw, err := l.Client.Query(pgCtx(t), projections.QueryAccount, map[string]any{"account_id": account})
		require.NoError(t, err)
		v = projections.AccountView{}
		require.NoError(t, json.Unmarshal(raw, &v))
		return v.Status == ledger.AccountStatusExpired
	}, pgWait, 10*time.Millisecond, "the expiry processor expired %s", account)
	return v
}

// accountExpiredEvents lists the AccountExpired events of an account in the stream.
func accountExpiredEvents(t *testing.T, l *testledger.Ledger, account string) []events.AccountExpired {
	t.Helper()
	var out []events.AccountExpired
	for _, ev := range pgStream(t, l) {
		if e, ok := ev.Data.(events.AccountExpired); ok && ev.AccountID == account {
			out = append(out, e)
		}
	}
	return out
}

// TestSubscriptionMoveAndGraceExpiry: linking a subscription held by A to B moves it in one
// atomic append; A is in its grace period for 48 hours, then the expiry processor expires it.
func TestSubscriptionMoveAndGraceExpiry(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	first, err := l.Client.LinkSubscription(ctx, pgLink("pg-a", "sub-move"))
	require.NoError(t, err)
	assert.Equal(t, []string{events.TypeSubscriptionLinked}, pgTypes(first))
	a := pgAccount(t, l, "pg-a", first.Position)
	assert.Equal(t, ledger.AccountStatusActive, a.Status)
	assert.Equal(t, ledger.BillingMarketplace, a.BillingPath)
	require.NotNil(t, a.Subscription)
	assert.Equal(t, "sub-move", a.Subscription.SubscriptionID)
	assert.Nil(t, a.GraceUntil)

	l.Clock.Advance(time.Hour)
	movedAt := l.Clock.Now()
	moved, err := l.Client.LinkSubscription(ctx, pgLink("pg-b", "sub-move"))
	require.NoError(t, err)
	assert.Equal(t, []string{events.TypeSubscriptionLinked}, pgTypes(moved), "the reply lists the caller's events")

	// Both accounts' events are in the stream, adjacent, under the same command: one append.
	stream := pgStream(t, l)
	require.Len(t, stream, 3)
	unl, ok := stream[1].Data.(events.SubscriptionUnlinked)
	require.True(t, ok, "A's unlink comes first")
	lnk, ok := stream[2].Data.(events.SubscriptionLinked)
	require.True(t, ok)
	assert.Equal(t, "pg-a", stream[1].AccountID)
	assert.Equal(t, "pg-b", stream[2].AccountID)
	assert.Equal(t, stream[1].CommandID, stream[2].CommandID)
	assert.Equal(t, moved.Position, stream[2].Position)
	assert.Equal(t, events.UnlinkMoved, unl.Reason)
	assert.Equal(t, "pg-b", unl.MovedToAccountID)
	assert.Equal(t, "pg-a", lnk.PreviousAccountID)
	graceUntil := movedAt.Add(48 * time.Hour)
	assert.True(t, unl.GraceUntil.Equal(graceUntil))

	a = pgAccount(t, l, "pg-a", moved.Position)
	assert.Equal(t, ledger.AccountStatusGrace, a.Status)
	assert.Equal(t, ledger.BillingNone, a.BillingPath)
	assert.Nil(t, a.Subscription)
	require.NotNil(t, a.GraceUntil)
	assert.True(t, a.GraceUntil.Equal(graceUntil))
	assert.Equal(t, "sub-move", a.PreviousSubscriptionID)
	b := pgAccount(t, l, "pg-b", moved.Position)
	assert.Equal(t, ledger.AccountStatusActive, b.Status)
	assert.Equal(t, ledger.BillingMarketplace, b.BillingPath)

	// 1ns before the end of the grace period A is still in it: a command on A (which first applies
	// whatever is due) appends no expiry.
	l.Clock.Set(graceUntil.Add(-time.Nanosecond))
	r, err := l.Client.PurchasePaygContract(ctx, commands.PurchasePaygContract{Meta: pgMeta("pg-a"), ContractID: "pg-a-P"})
	require.NoError(t, err)
	assert.Equal(t, []string{events.TypePaygContractPurchased}, pgTypes(r))
	assert.Equal(t, ledger.AccountStatusGrace, pgAccount(t, l, "pg-a", r.Position).Status)

	l.Clock.Set(graceUntil)
	a = pgExpire(t, l, "pg-a")
	require.NotNil(t, a.ExpiredAt)
	assert.True(t, a.ExpiredAt.Equal(graceUntil), "expired at the end of the grace period")
	exp := accountExpiredEvents(t, l, "pg-a")
	require.Len(t, exp, 1)
	assert.Equal(t, events.AccountExpiredReason, exp[0].Reason)
	assert.Equal(t, "sub-move", exp[0].SubscriptionID)
	assert.Equal(t, ledger.AccountStatusActive, pgAccount(t, l, "pg-b", 0).Status, "the new holder is unaffected")

	// Linking a subscription again makes the account active.
	again, err := l.Client.LinkSubscription(ctx, pgLink("pg-a", "sub-other"))
	require.NoError(t, err)
	a = pgAccount(t, l, "pg-a", again.Position)
	assert.Equal(t, ledger.AccountStatusActive, a.Status)
	assert.Nil(t, a.GraceUntil)
	assert.Nil(t, a.ExpiredAt)
}

// TestSubscriptionConflicts: an account pays through a subscription or annual sales licenses,
// never both; a rejection appends nothing.
func TestSubscriptionConflicts(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	_, err := l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: pgMeta("pg-sales"), LicenseID: "pg-sales-L", Source: ledger.SourceSales, Credits: commands.MustAmount("10")})
	require.NoError(t, err)
	_, err = l.Client.ActivateLicense(ctx, commands.ActivateLicense{Meta: pgMeta("pg-sales"), LicenseID: "pg-sales-L"})
	require.NoError(t, err)
	_, err = l.Client.LinkSubscription(ctx, pgLink("pg-market", "sub-c"))
	require.NoError(t, err)
	head := pgHead(t, l)

	_, err = l.Client.LinkSubscription(ctx, pgLink("pg-sales", "sub-x"))
	assert.Equal(t, ledger.CodeSubscriptionConflict, pgCode(err), "link while a sales license is active: %v", err)
	_, err = l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: pgMeta("pg-market"), LicenseID: "pg-market-L", Source: ledger.SourceSales, Credits: commands.MustAmount("10")})
	assert.Equal(t, ledger.CodeSubscriptionConflict, pgCode(err), "sales license while linked: %v", err)
	// Moving sub-c to the sales account fails on the sales account; sub-c stays where it was.
	_, err = l.Client.LinkSubscription(ctx, pgLink("pg-sales", "sub-c"))
	assert.Equal(t, ledger.CodeSubscriptionConflict, pgCode(err))
	_, err = l.Client.LinkSubscription(ctx, pgLink("pg-market", "sub-y"))
	assert.Equal(t, ledger.CodeSubscriptionConflict, pgCode(err), "a second subscription on one account")
	_, err = l.Client.LinkSubscription(ctx, commands.LinkSubscription{Meta: pgMeta("pg-market"), SubscriptionID: "sub-c", Marketplace: "gcp"})
	assert.Equal(t, ledger.CodeInvalidArgument, pgCode(err))
	_, err = l.Client.UnlinkSubscription(ctx, commands.UnlinkSubscription{Meta: pgMeta("pg-sales"), SubscriptionID: "sub-c"})
	assert.Equal(t, ledger.CodeNotFound, pgCode(err), "unlinking another account's subscription")
	assert.Equal(t, head, pgHead(t, l), "rejections append nothing")

	// A marketplace credits license is fine beside a subscription; relinking the holder is a no-op.
	_, err = l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: pgMeta("pg-market"), LicenseID: "pg-market-AWS", Source: ledger.SourceAWS, Credits: commands.MustAmount("10")})
	assert.NoError(t, err)
	r, err := l.Client.LinkSubscription(ctx, pgLink("pg-market", "sub-c"))
	require.NoError(t, err)
	assert.Empty(t, r.Events)
	v := pgAccount(t, l, "pg-market", r.Position)
	require.NotNil(t, v.Subscription)
	assert.Equal(t, "sub-c", v.Subscription.SubscriptionID)
	assert.Equal(t, ledger.BillingAnnual, pgAccount(t, l, "pg-sales", 0).BillingPath)
}

// TestSubscriptionUnlink: unlinking starts the grace period; the account can buy a sales license.
func TestSubscriptionUnlink(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	_, err := l.Client.LinkSubscription(ctx, pgLink("pg-u", "sub-u"))
	require.NoError(t, err)
	l.Clock.Advance(time.Hour)
	r, err := l.Client.UnlinkSubscription(ctx, commands.UnlinkSubscription{Meta: pgMeta("pg-u"), SubscriptionID: "sub-u"})
	require.NoError(t, err)
	assert.Equal(t, []string{events.TypeSubscriptionUnlinked}, pgTypes(r))
	v := pgAccount(t, l, "pg-u", r.Position)
	assert.Equal(t, ledger.AccountStatusGrace, v.Status)
	require.NotNil(t, v.GraceUntil)
	assert.True(t, v.GraceUntil.Equal(l.Clock.Now().Add(48*time.Hour)))
	_, err = l.Client.UnlinkSubscription(ctx, commands.UnlinkSubscription{Meta: pgMeta("pg-u"), SubscriptionID: "sub-u"})
	assert.Equal(t, ledger.CodeNotFound, pgCode(err))
	_, err = l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: pgMeta("pg-u"), LicenseID: "pg-u-L", Source: ledger.SourceSales, Credits: commands.MustAmount("10")})
	assert.NoError(t, err)
	// The freed subscription links to another account without moving anything.
	r, err = l.Client.LinkSubscription(ctx, pgLink("pg-u2", "sub-u"))
	require.NoError(t, err)
	assert.Equal(t, []string{events.TypeSubscriptionLinked}, pgTypes(r))
	assert.Equal(t, ledger.AccountStatusGrace, pgAccount(t, l, "pg-u", r.Position).Status)
}

// TestSubscriptionRelinkUnderConcurrency: goroutines link one subscription to several accounts at
// once, interleaved with other commands on those accounts. Exactly one account holds it at the
// end, and walking the stream shows every move as an unlink immediately followed, in the same
// command, by the link it made: never two holders, never none without an event saying so.
func TestSubscriptionRelinkUnderConcurrency(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	const (
		accounts  = 8
		perWorker = 6
		sub       = "sub-hot"
	)
	var wg sync.WaitGroup
	errs := make(chan error, accounts*perWorker*2)
	start := make(chan struct{})
	for i := 0; i < accounts; i++ {
		acc := fmt.Sprintf("pg-c%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < perWorker; j++ {
				r, err := l.Client.LinkSubscription(pgCtx(t), pgLink(acc, sub))
				if err == nil && len(r.Events) > 0 && r.Events[len(r.Events)-1].Type != events.TypeSubscriptionLinked {
					err = fmt.Errorf("link of %s replied %v", acc, pgTypes(r))
				}
				errs <- err
			}
		}()
		go func() { // concurrent commands on the same accounts
			defer wg.Done()
			<-start
			for j := 0; j < perWorker; j++ {
				_, err := l.Client.PurchasePaygContract(pgCtx(t), commands.PurchasePaygContract{Meta: pgMeta(acc), ContractID: fmt.Sprintf("%s-P%d", acc, j)})
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	holder, moves, links := pgWalkSubscription(t, pgStream(t, l), sub)
	require.NotEmpty(t, holder)
	assert.Equal(t, links, moves+1, "every link after the first is a move")
	head := pgHead(t, l)
	holders := 0
	for i := 0; i < accounts; i++ {
		acc := fmt.Sprintf("pg-c%d", i)
		v := pgAccount(t, l, acc, head)
		if v.Subscription != nil {
			holders++
			assert.Equal(t, holder, acc, "the read model agrees with the stream")
			assert.Equal(t, ledger.AccountStatusActive, v.Status)
		} else if v.PreviousSubscriptionID != "" {
			assert.Equal(t, ledger.AccountStatusGrace, v.Status)
		}
	}
	assert.Equal(t, 1, holders, "exactly one account holds the subscription")

	// The writer's index agrees too: one more link moves it from the holder, also after a restart.
	pgRestart(t, l)
	r, err := l.Client.LinkSubscription(pgCtx(t), pgLink("pg-c-last", sub))
	require.NoError(t, err)
	stream := pgStream(t, l)
	last := stream[len(stream)-1]
	require.Equal(t, r.Position, last.Position)
	assert.Equal(t, holder, last.Data.(events.SubscriptionLinked).PreviousAccountID)
	prev := stream[len(stream)-2]
	assert.Equal(t, holder, prev.AccountID)
	assert.Equal(t, events.UnlinkMoved, prev.Data.(events.SubscriptionUnlinked).Reason)
}

// pgWalkSubscription replays one subscription's events in stream order and checks the move
// invariants; it returns the final holder, the number of moves and of links.
func pgWalkSubscription(t *testing.T, stream []events.Event, sub string) (holder string, moves, links int) {
	t.Helper()
	var pending *events.Event // a moved unlink waiting for its link
	for i := range stream {
		ev := stream[i]
		switch e := ev.Data.(type) {
		case events.SubscriptionUnlinked:
			if e.SubscriptionID != sub {
				continue
			}
			require.Nil(t, pending, "position %d: two unlinks without a link between", ev.Position)
			require.Equal(t, holder, ev.AccountID, "position %d: unlinked by an account that did not hold it", ev.Position)
			require.Equal(t, events.UnlinkMoved, e.Reason)
			holder, pending = "", &stream[i]
			moves++
		case events.SubscriptionLinked:
			if e.SubscriptionID != sub {
				continue
			}
			links++
			if pending == nil {
				require.Empty(t, holder, "position %d: linked to %s while %s held it", ev.Position, ev.AccountID, holder)
				require.Empty(t, e.PreviousAccountID)
			} else {
				require.Equal(t, pending.Position+1, ev.Position, "position %d: the link follows its unlink at once", ev.Position)
				require.Equal(t, pending.CommandID, ev.CommandID, "the move is one command")
				require.Equal(t, pending.AccountID, e.PreviousAccountID)
				require.Equal(t, ev.AccountID, pending.Data.(events.SubscriptionUnlinked).MovedToAccountID)
			}
			holder, pending = ev.AccountID, nil
		default:
			require.Nil(t, pending, "position %d: a moved unlink must be followed by its link", ev.Position)
		}
	}
	require.Nil(t, pending)
	return holder, moves, links
}

// TestGracePeriodSurvivesRestart: a restart during the grace period (state from the snapshot or
// the stream) still expires the account at the end of it.
func TestGracePeriodSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, snapshotEvery := range []uint64{0, 1} {
		t.Run(fmt.Sprintf("snapshot_every_%d", snapshotEvery), func(t *testing.T) {
			t.Parallel()
			l := pgStart(t, func(c *server.Config) { c.SnapshotEvery = snapshotEvery })
			ctx := pgCtx(t)
			_, err := l.Client.LinkSubscription(ctx, pgLink("pg-r1", "sub-r"))
			require.NoError(t, err)
			movedAt := l.Clock.Now().Add(time.Hour)
			l.Clock.Set(movedAt)
			_, err = l.Client.LinkSubscription(ctx, pgLink("pg-r2", "sub-r"))
			require.NoError(t, err)
			graceUntil := movedAt.Add(ledger.SubscriptionGracePeriod)

			l.Clock.Set(movedAt.Add(24 * time.Hour))
			pgRestart(t, l)
			v := pgAccount(t, l, "pg-r1", 0)
			assert.Equal(t, ledger.AccountStatusGrace, v.Status, "still in grace after the restart")
			require.NotNil(t, v.GraceUntil)
			assert.True(t, v.GraceUntil.Equal(graceUntil))

			l.Clock.Set(graceUntil.Add(time.Millisecond))
			v = pgExpire(t, l, "pg-r1")
			assert.True(t, v.ExpiredAt.Equal(graceUntil), "expired at the end of the grace period, not at the restart or the sweep")
			require.Len(t, accountExpiredEvents(t, l, "pg-r1"), 1)

			// The subscription's holder survived the restart: moving it again unlinks pg-r2.
			r, err := l.Client.LinkSubscription(ctx, pgLink("pg-r3", "sub-r"))
			require.NoError(t, err)
			assert.Equal(t, ledger.AccountStatusGrace, pgAccount(t, l, "pg-r2", r.Position).Status)
		})
	}
}
