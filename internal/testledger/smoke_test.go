package testledger_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
)

func TestSmoke(t *testing.T) {
	l := testledger.Start(t)
	ctx := context.Background()
	a, err := l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: commands.Meta{CommandID: "c1", AccountID: "a1"}, LicenseID: "L1", Source: "sales", Credits: commands.MustAmount("10")})
	require.NoError(t, err)
	require.Equal(t, uint64(1), a.Position)
	l.Restart(t)
	a, err = l.Client.ActivateLicense(ctx, commands.ActivateLicense{Meta: commands.Meta{CommandID: "c2", AccountID: "a1"}, LicenseID: "L1"})
	require.NoError(t, err)
	require.Equal(t, uint64(2), a.Version)
}
