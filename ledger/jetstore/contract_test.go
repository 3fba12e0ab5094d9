package jetstore_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/ledger/storetest"
)

// cancelling sends its next append with a context that has already ended: the batch's first
// messages go out, its commit never does, and the server stores nothing (an append whose
// outcome the caller cannot know, which did not land).
type cancelling struct {
	*jetstore.Store
	next atomic.Bool
}

func (c *cancelling) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	if c.next.Swap(false) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		ctx = cctx
	}
	return c.Store.Append(ctx, recs)
}

func TestJetStreamStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (ledger.Store, storetest.Uncertain) { return contractStore(t, nil) })
}

// A store created by an earlier build (account subjects) keeps the same contract, partition
// reads included (it reads every event and passes on the partitions' own).
func TestJetStreamStoreContractWithAccountSubjects(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (ledger.Store, storetest.Uncertain) {
		return contractStore(t, func(js jetstream.JetStream) {
			_, err := js.CreateStream(context.Background(), olderBuildStreamConfig())
			require.NoError(t, err)
		})
	})
}

// contractStore opens a store on a fresh server, after before (when set) has prepared it.
func contractStore(t *testing.T, before func(jetstream.JetStream)) (ledger.Store, storetest.Uncertain) {
	nc, js := bareJetStream(t)
	if before != nil {
		before(js)
	}
	st, err := jetstore.Open(context.Background(), nc, jetstore.Config{})
	require.NoError(t, err)
	c := &cancelling{Store: st}
	return c, func(stored bool) bool {
		if stored {
			return false // an answer lost after the store kept the batch: not provoked here
		}
		c.next.Store(true)
		return true
	}
}
