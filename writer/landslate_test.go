package writer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// landsLate holds back the first append touching account and reports it uncertain (a timeout:
// the stream leader has not committed it yet); the append lands right after the writer's next
// read of the account's version, which so still finds the version from before it (a proposal
// committed by a slow replica set after the client gave up, DefaultAppendTimeout).
type landsLate struct {
	*jetstore.Store
	account string
	mu      sync.Mutex
	held    []ledger.Record
	armed   bool
	landed  error
	fenced  bool // the held append carried the partition fence in place of the account's check
}

func (s *landsLate) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	s.mu.Lock()
	if s.armed {
		for _, r := range recs {
			if r.AccountID == s.account {
				s.armed = false
				s.held = append([]ledger.Record(nil), recs...)
				s.fenced = r.CheckFence
				s.mu.Unlock()
				return nil, fmt.Errorf("%w: timeout", ledger.ErrUncertain)
			}
		}
	}
	s.mu.Unlock()
	return s.Store.Append(ctx, recs)
}

func (s *landsLate) AccountVersion(ctx context.Context, id string) (uint64, error) {
	v, err := s.Store.AccountVersion(ctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == s.account && s.held != nil {
		_, s.landed = s.Store.Append(ctx, s.held)
		s.held = nil
	}
	return v, err
}

// TestUncertainFencedAppendIsNotStoredTwice: an append that carried the partition fence in place
// of its account's version check times out and lands only after the writer read the account's
// version (which so found nothing moved). The retry of the command must not land beside it: the
// command is stored once, and a load of the account finds an unbroken history.
func TestUncertainFencedAppendIsNotStoredTwice(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	o := fencedRig(t, r)
	st := &landsLate{Store: r.store, account: "acme"}
	w := newWriter(t, r, st, writer.Options{Owner: o, Fences: o})
	run(t, w)
	require.Nil(t, do(t, w, "purchase_license", buyL1).Err)
	st.mu.Lock()
	st.armed = true
	st.mu.Unlock()
	res := do(t, w, "activate_license", actL1)
	require.Nil(t, res.Err, "%v", res.Err)
	st.mu.Lock()
	fenced, landed := st.fenced, st.landed
	st.mu.Unlock()
	require.True(t, fenced, "the held append carried the fence alone (else the store refuses the double itself)")
	require.NoError(t, landed, "the held append landed late")

	recs, err := r.store.ReadAccount(context.Background(), "acme", 0)
	require.NoError(t, err)
	var versions []uint64
	for _, rec := range recs {
		versions = append(versions, rec.Version)
	}
	assert.Equal(t, []uint64{1, 2}, versions, "the activation is stored once")

	w2 := newWriter(t, r, r.store, writer.Options{})
	run(t, w2)
	again := do(t, w2, "allocate_credits", allocA("x-after"))
	assert.Nil(t, again.Err, "the account's history is whole: %v", again.Err)
}
