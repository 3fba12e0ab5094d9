package writer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// TestSnapshotReReadsStaleAccountsBeside: a periodic snapshot due while an account is stale (a
// failed append whose head could not be read either, out of attempts) re-reads the account
// beside the loop, not on it: while that read blocks, commands on other accounts are answered,
// and the snapshot is saved once the read returns.
func TestSnapshotReReadsStaleAccountsBeside(t *testing.T) {
	t.Parallel()
	st, g := staleSlow()
	snaps := &memSnaps{}
	w, _ := runMem(t, st, writer.Options{Snapshots: snaps, SnapshotEvery: 2, MaxAttempts: 1})
	lost := do(t, w, "purchase_license", buy("slow", "L0"))
	require.NotNil(t, lost.Err)
	require.Equal(t, ledger.CodeUnavailable, lost.Err.Code, "out of attempts: slow is left stale")
	require.Nil(t, do(t, w, "purchase_license", buy("a", "L1")).Err)
	require.Nil(t, do(t, w, "purchase_license", buy("b", "L2")).Err) // a snapshot is due now
	<-g.entered                                                      // the snapshot's re-read of slow has started and is blocked
	require.Nil(t, do(t, w, "purchase_license", buy("c", "L3")).Err, "answered while the snapshot's re-read is blocked")
	assert.Zero(t, snaps.count(), "no snapshot without slow")
	close(g.open)
	require.Eventually(t, func() bool { return snaps.count() > 0 }, 10*time.Second, time.Millisecond,
		"the snapshot is saved once slow is read")
}

// TestSnapshotWithAnUnreadableStaleAccountIsPutOff: when the re-read of a stale account fails,
// the periodic snapshot is put off (SnapshotEvery events on), not retried at once over and over:
// the account is read once for it, and commands go on being answered.
func TestSnapshotWithAnUnreadableStaleAccountIsPutOff(t *testing.T) {
	t.Parallel()
	st := &writer.MemStore{}
	failFirstAppend(st, "slow")
	var reads atomic.Int32
	st.BeforeRead = func(ctx context.Context, op, id string) error {
		if id != "slow" {
			return nil
		}
		if op != "AccountVersion" {
			reads.Add(1)
		}
		return errors.New("unreadable")
	}
	snaps := &memSnaps{}
	w, _ := runMem(t, st, writer.Options{Snapshots: snaps, SnapshotEvery: 2, MaxAttempts: 1})
	require.NotNil(t, do(t, w, "purchase_license", buy("slow", "L0")).Err)
	for i, acct := range []string{"a", "b", "c"} {
		require.Nil(t, do(t, w, "purchase_license", buy(acct, "L"+string(rune('1'+i)))).Err)
	}
	assert.Zero(t, snaps.count(), "no snapshot without slow")
	assert.LessOrEqual(t, reads.Load(), int32(2), "slow is re-read once per due snapshot, not in a loop")
}
