package jetstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestShortReadsPlaceNoConsumer: a read of a few positions (a catch-up after a load) is served by
// batched direct gets, every event in order and an ownership record at the head passed over,
// with no consumer placed (one created just after the stream's leader moved can miss its first
// pull: 2 s); a long read (a load) goes through an ordered consumer, the faster read, and so does
// a near read when the stream's leader answers.
func TestShortReadsPlaceNoConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, nc := jsServerConn(t)
	st, err := jetstore.Open(ctx, nc, jetstore.Config{Partitions: 4})
	require.NoError(t, err)
	const n = 5000 // more than a short read
	for b := 0; b < n/500; b++ {
		recs := make([]ledger.Record, 500)
		for i := range recs {
			recs[i] = ev(fmt.Sprintf("acct-%d", b*500+i), 1, false)
		}
		_, err := st.Append(ctx, recs)
		require.NoError(t, err)
	}
	fenceAll(t, st, "n1", make([]uint64, 4)) // the head is an ownership record
	calls := watchAPI(t, ns.ClientURL())
	consumers := func() (c, gets int) {
		for subj, k := range calls.since(t, nc) {
			switch {
			case strings.HasPrefix(subj, "$JS.API.CONSUMER."):
				c += k
			case strings.HasPrefix(subj, "$JS.API.DIRECT.GET"):
				gets += k
			}
		}
		return c, gets
	}

	var got []uint64
	head, err := st.Read(ctx, n-9, func(r ledger.Record) error {
		assert.Equal(t, fmt.Sprintf("acct-%d", r.Position-1), r.AccountID)
		got = append(got, r.Position)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(n+4), head)
	assert.Equal(t, []uint64{n - 9, n - 8, n - 7, n - 6, n - 5, n - 4, n - 3, n - 2, n - 1, n}, got)
	c, gets := consumers()
	assert.Zero(t, c, "a short read places no consumer")
	assert.Positive(t, gets)

	count := 0
	_, err = st.Read(ctx, 1, func(ledger.Record) error { count++; return nil })
	require.NoError(t, err)
	assert.Equal(t, n, count)
	c, _ = consumers()
	assert.Positive(t, c, "a long read goes through a consumer")

	count = 0 // a near read of a stream whose leader answers reads as Read does
	last, err := st.ReadNear(ctx, 1, func(ledger.Record) error { count++; return nil })
	require.NoError(t, err)
	assert.Equal(t, uint64(n+4), last)
	assert.Equal(t, n, count)
	c, _ = consumers()
	assert.Positive(t, c, "a long near read, the leader answering, goes through a consumer")

	stop := fmt.Errorf("enough")
	count = 0
	_, err = st.Read(ctx, n-9, func(ledger.Record) error { count++; return stop })
	assert.ErrorIs(t, err, stop, "fn's error ends a short read")
	assert.Equal(t, 1, count)
}
