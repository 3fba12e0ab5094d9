package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
)

// A rejected command is remembered: its retry gets the first answer again even after the account
// changed, and appends nothing; the same id with another body is idempotency_key_reused.
func TestRejectionIsReplayed(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	ctx := context.Background()
	_, err := l.Client.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: commands.Meta{CommandID: "buy", AccountID: "rj"}, LicenseID: "rj-L", Source: "sales", Credits: commands.MustAmount("10")})
	require.NoError(t, err)
	_, err = l.Client.ActivateLicense(ctx, commands.ActivateLicense{Meta: commands.Meta{CommandID: "act", AccountID: "rj"}, LicenseID: "rj-L"})
	require.NoError(t, err)

	send := func(body string) (map[string]any, string) {
		msg, err := l.NC.Request("ledger.cmd.allocate_credits", []byte(body), 5*time.Second)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(msg.Data, &out))
		return out, msg.Header.Get(commands.ReplayedHeader)
	}
	body := `{"command_id":"big","account_id":"rj","feature":"file_security","credits":"50"}`
	first, replayed := send(body)
	require.Equal(t, false, first["ok"])
	assert.Equal(t, "insufficient_credits", first["error"].(map[string]any)["code"])
	assert.Empty(t, replayed)
	head := l.Head()

	// More credits arrive; the retry still gets the first answer.
	_, err = l.Client.UpgradeContract(ctx, commands.UpgradeContract{Meta: commands.Meta{CommandID: "up", AccountID: "rj"}, LicenseID: "rj-L", AdditionalCredits: commands.MustAmount("100")})
	require.NoError(t, err)
	head++
	again, replayed := send(body)
	assert.Equal(t, first, again)
	assert.Equal(t, "true", replayed)
	assert.Equal(t, head, l.Head(), "a replayed rejection appends nothing")

	other, _ := send(`{"command_id":"big","account_id":"rj","feature":"file_security","credits":"5"}`)
	assert.Equal(t, "idempotency_key_reused", other["error"].(map[string]any)["code"])
	fresh, _ := send(`{"command_id":"big-2","account_id":"rj","feature":"file_security","credits":"50"}`)
	assert.Equal(t, true, fresh["ok"])
}
