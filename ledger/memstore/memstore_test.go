package memstore_test

import (
	"testing"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/memstore"
	"github.com/creditledger/creditledger/ledger/storetest"
)

func TestMemStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) (ledger.Store, storetest.Uncertain) {
		st := memstore.New()
		return st, func(stored bool) bool { st.UncertainNext(stored); return true }
	})
}

func TestMemCommandClaimsContract(t *testing.T) {
	storetest.RunCommandClaims(t, func(*testing.T) (storetest.CommandClaims, storetest.CommandClaims) {
		c := &memstore.CommandClaims{}
		return c, c
	})
}
