package productiontest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// Issue 12's "idempotency of accepted and rejected commands, cluster-wide": a command_id used on
// an account of one node's partition, accepted or rejected, is refused idempotency_key_reused
// when it comes with another body for an account another node owns, as one node refuses it;
// before, the other node decided it afresh (its record held only its own partitions' ids). Sent
// to both accounts at the same moment, one is decided and the other refused, in every round.
func TestCommandIDIsOneCommandAcrossPartitions(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	a := start(t, sharedNode(t, url, "a", nil))
	b := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b)
	cl := client(t, connectTo(t, url))
	ctx := ctxT(t)
	onA, onB := accountOn(t, a, "cid-a"), accountOn(t, b, "cid-b")
	for _, acct := range []string{onA, onB} {
		_, err := cl.PurchaseLicense(ctx, purchase(acct+"-buy", acct, acct+"-L1", "100"))
		require.NoError(t, err)
		_, err = cl.ActivateLicense(ctx, activate(acct+"-act", acct, acct+"-L1"))
		require.NoError(t, err)
	}

	_, err := cl.AllocateCredits(ctx, allocate("cid-accepted", onA, "10"))
	require.NoError(t, err)
	_, err = cl.AllocateCredits(ctx, allocate("cid-accepted", onB, "10"))
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "accepted on a's account, reused on b's: %v", err)

	_, err = cl.AllocateCredits(ctx, allocate("cid-rejected", onB, "500"))
	require.Equal(t, ledger.CodeInsufficientCredits, code(err), "%v", err)
	_, err = cl.AllocateCredits(ctx, allocate("cid-rejected", onA, "5"))
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "rejected on b's account, reused on a's: %v", err)

	replay, err := cl.AllocateCredits(ctx, allocate("cid-accepted", onA, "10"))
	require.NoError(t, err, "the first command's retry is still its first answer")
	assert.True(t, replay.Replayed)

	// A node that recorded a command_id and then crashed before its append, or whose create
	// landed but its acknowledgement was lost: the retry on the same account finds its own record
	// and is decided; on another account it is refused.
	js, err := jetstream.New(connectTo(t, url))
	require.NoError(t, err)
	record, err := jetstore.OpenCommandClaims(ctx, js, 1)
	require.NoError(t, err)
	holders, err := record.ClaimCommands(ctx, []string{"cid-crashed"}, []string{onA})
	require.NoError(t, err)
	require.Equal(t, []string{onA}, holders)
	retried, err := cl.AllocateCredits(ctx, allocate("cid-crashed", onA, "1"))
	require.NoError(t, err, "recorded for its own account, never decided: decided now")
	assert.False(t, retried.Replayed)
	_, err = cl.AllocateCredits(ctx, allocate("cid-crashed", onB, "1"))
	assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "%v", err)

	for round := 0; round < 10; round++ {
		id := fmt.Sprintf("cid-race-%d", round)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, acct := range []string{onA, onB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = cl.AllocateCredits(ctx, commands.AllocateCredits{Meta: commands.Meta{CommandID: id, AccountID: acct},
					Feature: "container_security", Credits: commands.MustAmount("1")})
			}()
		}
		wg.Wait()
		decided, refused := 0, 0
		for _, err := range errs {
			switch code(err) {
			case "":
				decided++
			case ledger.CodeIdempotencyKeyReused:
				refused++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		assert.Equal(t, [2]int{1, 1}, [2]int{decided, refused}, "round %d: one account decides %s, the other is refused", round, id)
	}
}

// A node alone (the first of a cluster to start, or the one left while the others restart) owns
// every partition, and decides commands whose command ids are then still reused across
// partitions once it gives partitions away: it records them too (RecordEveryCommand). On the
// previous build it recorded nothing while it owned everything, and a node that joined later
// accepted such a command_id, sent with another body, for an account of its partitions. Several
// command ids are used, on accounts of different partitions, so that some stay with the first
// node after the split (a reuse there is known to its own record either way).
func TestCommandIDsDecidedAloneAreRecorded(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	a := start(t, sharedNode(t, url, "a", nil))
	require.Eventually(t, func() bool { return len(a.Partitions()) == a.PartitionCount() }, waitFor, pollTick)
	cl := client(t, connectTo(t, url))
	ctx := ctxT(t)
	first := map[string]string{} // command id -> the account it was used for alone
	for i := 0; i < 16; i++ {
		acct, id := fmt.Sprintf("alone-%d", i), fmt.Sprintf("alone-buy-%d", i)
		_, err := cl.PurchaseLicense(ctx, purchase(id, acct, acct+"-L", "10"))
		require.NoError(t, err)
		first[id] = acct
	}
	over := allocate("alone-over", "alone-0", "500")
	_, err := cl.AllocateCredits(ctx, over)
	require.Equal(t, ledger.CodeInsufficientCredits, code(err), "%v", err)

	b := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b)
	onB := accountOn(t, b, "joined")
	stayed := 0
	for id, acct := range first {
		if holds(b, acct) {
			continue
		}
		stayed++
		_, err := cl.PurchaseLicense(ctx, purchase(id, onB, id+"-other", "10"))
		assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "%s, decided for %s by a alone, reused for %s on b: %v", id, acct, onB, err)
	}
	require.NotZero(t, stayed, "no account stayed with a")
	if !holds(b, over.AccountID) {
		_, err = cl.AllocateCredits(ctx, allocate(over.CommandID, onB, "5"))
		assert.Equal(t, ledger.CodeIdempotencyKeyReused, code(err), "rejected by a alone, reused on b: %v", err)
	}
}
