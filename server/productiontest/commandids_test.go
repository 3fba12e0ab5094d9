package productiontest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
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
