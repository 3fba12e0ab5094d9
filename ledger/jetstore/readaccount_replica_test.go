package jetstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// TestReadAccountReadsAfterEveryWriteOnAReplica: a writer re-reads an account after a conflict
// or an uncertain append and decides from what it reads, rejections included. On a replicated
// stream any current replica answers a direct get, and one may not have applied the last write
// yet: an account read through a follower's server right after each append, acknowledged by the
// leader, must hold that append (its last message is the leader's).
func TestReadAccountReadsAfterEveryWriteOnAReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	writer, reader, _ := replicatedPair(t)
	const acct = "replica-acct"
	for i := 1; i <= 120; i++ {
		pos, err := writer.Append(ctx, []ledger.Record{{AccountID: acct, Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), Version: uint64(i)}})
		require.NoError(t, err)
		recs, err := reader.ReadAccount(ctx, acct, 0)
		require.NoError(t, err)
		require.Equal(t, i, len(recs), "read %d, right after the append", i)
		require.Equal(t, pos[0], recs[i-1].Position)
	}
}
