package writer_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/commands/submit"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/writer"
)

// leaseOwner owns every partition of a 4-partition store, under the ownership record it fenced
// at load: by the lease clock while leased is true, by the fence alone while fenced is true
// (writer.FencedOwner: the lease store is unreachable), and neither once a partition is lost.
type leaseOwner struct {
	fencedOwner
	leased, fenced atomic.Bool
}

func (o *leaseOwner) Owns(id string) bool { return o.leased.Load() && o.fencedOwner.Owns(id) }
func (o *leaseOwner) OwnsFenced(id string) bool {
	return (o.leased.Load() || o.fenced.Load()) && o.fencedOwner.Owns(id)
}

// sendAs is send with the request's expected_version passed on.
func sendAs(t *testing.T, w *writer.Writer, name string, body map[string]any) writer.Result {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	p, err := commands.Parse(name, raw)
	require.NoError(t, err)
	done := make(chan writer.Result, 1)
	require.NoError(t, w.Submit(submit.Request{CommandID: p.CommandID, AccountID: p.AccountID, BodyHash: p.BodyHash,
		ExpectedVersion: p.ExpectedVersion, Command: p.Command, Reply: func(res writer.Result) { done <- res }}))
	select {
	case res := <-done:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
		return writer.Result{}
	}
}

// While the lease store cannot be reached the writer keeps deciding on the partition fence: an
// append is answered (the server checks the fence), and so is a rejection once a read of the
// fence after its write finds it unmoved; an answer nothing written carries (a stale
// expected_version) and a subscription link wait for the lease (Redirect). Once another node
// fences the partition, neither an append nor a rejection is answered; with neither lease nor
// fence, nothing is decided.
func TestFencedOwnershipAnswersUnderTheFence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &writer.MemStore{}
	claims := make([]ledger.FenceClaim, 4)
	for i := range claims {
		claims[i] = fenceClaim(i, "node-a", 0)
	}
	pos, err := st.Fence(ctx, claims)
	require.NoError(t, err)
	o := &leaseOwner{fencedOwner: fencedOwner{fences: map[int]uint64{}, lost: map[int]bool{}}}
	for i, at := range pos {
		o.fences[i] = at
	}
	o.leased.Store(true)
	rejs := &stallingLog{}
	w, stop := runMem(t, st, writer.Options{Owner: o, Fences: o, Rejections: rejs})
	defer stop()
	acct, other := accountIn(t, 1, "fenced"), accountIn(t, 2, "other")
	require.Nil(t, sendAs(t, w, "purchase_license", map[string]any{"command_id": "buy", "account_id": acct,
		"license_id": "L1", "source": "sales", "credits": "5"}).Err)
	require.Nil(t, sendAs(t, w, "activate_license", map[string]any{"command_id": "act", "account_id": acct, "license_id": "L1"}).Err)
	alloc := func(id, credits string) map[string]any {
		return map[string]any{"command_id": id, "account_id": acct, "feature": "container_security", "credits": credits}
	}

	o.leased.Store(false) // the lease store stops answering
	o.fenced.Store(true)
	ok := sendAs(t, w, "allocate_credits", alloc("a1", "1"))
	require.Nil(t, ok.Err, "an append is answered on the fence")
	assert.Equal(t, uint64(3), ok.Version)
	res := sendAs(t, w, "allocate_credits", alloc("a2", "100"))
	require.NotNil(t, res.Err)
	assert.Equal(t, ledger.CodeInsufficientCredits, res.Err.Code, "a rejection under an unmoved fence: %+v", res)
	assert.True(t, rejs.has("a2"))
	for name, body := range map[string]map[string]any{
		"set_auto_renew":    {"command_id": "v1", "account_id": acct, "license_id": "L1", "enabled": false, "expected_version": 1},
		"link_subscription": {"command_id": "s1", "account_id": acct, "subscription_id": "sub-1", "marketplace": "aws"},
	} {
		res := sendAs(t, w, name, body)
		assert.True(t, res.Redirect, "%s waits for the lease: %+v", name, res)
		assert.False(t, rejs.has(body["command_id"].(string)))
	}
	recs, err := st.ReadAccount(ctx, acct, 0)
	require.NoError(t, err)
	assert.Len(t, recs, 3, "nothing appended but the allocation")

	// Another node takes the partition over (it acquired the lease this node could not renew).
	_, err = st.Fence(ctx, []ledger.FenceClaim{fenceClaim(1, "node-b", pos[1])})
	require.NoError(t, err)
	res = sendAs(t, w, "allocate_credits", alloc("a3", "1"))
	assert.True(t, res.Redirect, "the append is refused: %+v", res)
	assert.EqualValues(t, 1, o.losses.Load())
	assert.True(t, sendAs(t, w, "allocate_credits", alloc("a4", "100")).Redirect, "the partition is lost")

	o.fenced.Store(false) // neither lease nor fence
	res = sendAs(t, w, "purchase_license", map[string]any{"command_id": "b2", "account_id": other,
		"license_id": "L2", "source": "sales", "credits": "5"})
	assert.True(t, res.Redirect, "nothing decided: %+v", res)
}
