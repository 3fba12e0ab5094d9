package writer_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// failingStore wraps the real store: appends touching failAccount fail (nothing stored) while
// failing is set, and so do head reads, so the writer cannot tell where the account stands.
type failingStore struct {
	*jetstore.Store
	failAccount string
	failing     atomic.Bool
}

func (s *failingStore) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	for _, r := range recs {
		if s.failing.Load() && r.AccountID == s.failAccount {
			return nil, errors.New("connection lost")
		}
	}
	return s.Store.Append(ctx, recs)
}

func (s *failingStore) AccountVersion(ctx context.Context, id string) (uint64, error) {
	if s.failing.Load() {
		return 0, errors.New("version read failed")
	}
	return s.Store.AccountVersion(ctx, id)
}

// failingLog refuses the first n rejection writes.
type failingLog struct {
	writer.RejectionLog
	refusals atomic.Int32
}

func (l *failingLog) AppendRejections(ctx context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error) {
	if l.refusals.Add(-1) >= 0 {
		return nil, errors.New("log unavailable")
	}
	return l.RejectionLog.AppendRejections(ctx, rs)
}

// TestSnapshotReReadsStaleAccounts: an account a failed append left stale (its head could not be
// read either, and the command ran out of attempts) is re-read before a snapshot, not left out of
// it: a writer restored from that snapshot still has its credits and its license id.
func TestSnapshotReReadsStaleAccounts(t *testing.T) {
	r := newRig(t)
	fs := &failingStore{Store: r.store, failAccount: "acme"}
	w1 := newWriter(t, r, fs, writer.Options{Snapshots: r.snaps, SnapshotEvery: 1_000_000, MaxAttempts: 1})
	stop1 := run(t, w1)
	require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "buy", "account_id": "acme", "license_id": "L1", "source": "sales", "credits": "100"}).Err)
	require.Nil(t, do(t, w1, "activate_license", map[string]any{"command_id": "act", "account_id": "acme", "license_id": "L1"}).Err)
	fs.failing.Store(true)
	failed := do(t, w1, "allocate_credits", map[string]any{"command_id": "alloc", "account_id": "acme", "feature": "file_security", "credits": "10"})
	require.NotNil(t, failed.Err)
	require.Equal(t, ledger.CodeUnavailable, failed.Err.Code)
	fs.failing.Store(false)
	require.Nil(t, do(t, w1, "purchase_license", map[string]any{"command_id": "other", "account_id": "other", "license_id": "L2", "source": "sales", "credits": "5"}).Err)
	stop1() // the shutdown snapshot

	w2 := newWriter(t, r, r.store, writer.Options{Snapshots: r.snaps, SnapshotEvery: 1_000_000})
	run(t, w2)
	got := do(t, w2, "allocate_credits", map[string]any{"command_id": "alloc2", "account_id": "acme", "feature": "file_security", "credits": "10"})
	assert.Nil(t, got.Err, "acme holds 100 active credits")
	steal := do(t, w2, "purchase_license", map[string]any{"command_id": "steal", "account_id": "thief", "license_id": "L1", "source": "sales", "credits": "1"})
	require.NotNil(t, steal.Err)
	assert.Equal(t, ledger.CodeAlreadyExists, steal.Err.Code)
}

// TestRejectedAgainAfterALogFailure: a rejection the log refused is forgotten (answered
// unavailable); the same command rejected again, with room for one remembered rejection, is
// remembered and answered, not a crash of the writer.
func TestRejectedAgainAfterALogFailure(t *testing.T) {
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	fl := &failingLog{RejectionLog: log}
	fl.refusals.Store(1)
	w := newWriter(t, r, r.store, writer.Options{Rejections: fl, RejectionsRemembered: 1})
	run(t, w)
	body := map[string]any{"command_id": "big", "account_id": "acme", "feature": "file_security", "credits": "50"}
	first := do(t, w, "allocate_credits", body)
	require.NotNil(t, first.Err)
	require.Equal(t, ledger.CodeUnavailable, first.Err.Code)
	second := do(t, w, "allocate_credits", body)
	require.NotNil(t, second.Err)
	assert.Equal(t, ledger.CodeInsufficientCredits, second.Err.Code)
	third := do(t, w, "allocate_credits", body)
	require.NotNil(t, third.Err)
	assert.True(t, third.Replayed, "remembered this time")
	assert.Equal(t, second.Err, third.Err)
}

// TestIDInFlightDefersTheSecondBuyer: a purchase of a license id another account's append is
// still taking waits for that append; when it fails for good, the second buyer gets the id,
// rather than a durable already_exists for an id nobody holds.
func TestIDInFlightDefersTheSecondBuyer(t *testing.T) {
	r := newRig(t)
	log, err := jetstore.OpenRejections(context.Background(), r.store, 1)
	require.NoError(t, err)
	fs := &failingStore{Store: r.store, failAccount: "x"}
	fs.failing.Store(true)
	w := newWriter(t, r, fs, writer.Options{Rejections: log, MaxAttempts: 1})
	// Both are queued before the writer runs, so they meet in its first round.
	x := submitted(t, w, "purchase_license", map[string]any{"command_id": "bx", "account_id": "x", "license_id": "L", "source": "sales", "credits": "5"})
	y := submitted(t, w, "purchase_license", map[string]any{"command_id": "by", "account_id": "y", "license_id": "L", "source": "sales", "credits": "5"})
	run(t, w)
	xr := result(t, x)
	require.NotNil(t, xr.Err)
	assert.Equal(t, ledger.CodeUnavailable, xr.Err.Code, "x's append failed for good")
	yr := result(t, y)
	assert.Nil(t, yr.Err, "nobody holds L: y buys it")
}

// landsUncertain stores the first append touching account, then reports it uncertain (a timeout
// after the server applied it).
type landsUncertain struct {
	*jetstore.Store
	account string
	done    atomic.Bool
}

func (s *landsUncertain) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	pos, err := s.Store.Append(ctx, recs)
	for _, r := range recs {
		if err == nil && r.AccountID == s.account && s.done.CompareAndSwap(false, true) {
			return nil, fmt.Errorf("%w: timeout", ledger.ErrUncertain)
		}
	}
	return pos, err
}

// TestUncertainMoveThatLandedIsAReplay: a subscription move whose append timed out but landed is
// answered as accepted (a replay of what landed), not internal, and is not appended twice.
func TestUncertainMoveThatLandedIsAReplay(t *testing.T) {
	r := newRig(t)
	st := &landsUncertain{Store: r.store, account: "B"}
	w := newWriter(t, r, st, writer.Options{})
	run(t, w)
	require.Nil(t, do(t, w, "link_subscription", map[string]any{"command_id": "l1", "account_id": "A", "subscription_id": "S", "marketplace": "aws"}).Err)
	moved := do(t, w, "link_subscription", map[string]any{"command_id": "l2", "account_id": "B", "subscription_id": "S", "marketplace": "aws"})
	require.Nil(t, moved.Err, "%v", moved.Err)
	assert.True(t, moved.Replayed, "answered from the events that landed")
	recs, err := r.store.ReadAccount(context.Background(), "B", 0)
	require.NoError(t, err)
	assert.Len(t, recs, 1, "the link is stored once")
}
