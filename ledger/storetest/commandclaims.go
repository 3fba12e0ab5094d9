package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// CommandClaims is the command-id record a writer shares with the writers of other partitions
// (writer.CommandClaims, restated here so the contract imports no writer).
type CommandClaims interface {
	ClaimCommands(ctx context.Context, commandIDs, accounts []string) ([]string, error)
}

// RunCommandClaims is the contract every command-id record passes: the first account holds a
// command id for good, its own claim again succeeds, the claims of one call are answered each on
// its own, any bytes make a command id, and two writers racing for the same ids learn one holder
// each. newClaims returns two handles on one shared record (two processes).
func RunCommandClaims(t *testing.T, newClaims func(t *testing.T) (CommandClaims, CommandClaims)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("the first account holds a command id; each claim of a call is answered on its own", func(t *testing.T) {
		a, b := newClaims(t)
		odd := "cmd with spaces/ünïcode.*>"
		holders, err := a.ClaimCommands(ctx, []string{"c-1", odd}, []string{"acct-a", "acct-a"})
		require.NoError(t, err)
		assert.Equal(t, []string{"acct-a", "acct-a"}, holders)
		holders, err = b.ClaimCommands(ctx, []string{"c-2", "c-1", odd, "c-3"}, []string{"acct-b", "acct-b", "acct-a", "acct-b"})
		require.NoError(t, err)
		assert.Equal(t, []string{"acct-b", "acct-a", "acct-a", "acct-b"}, holders,
			"c-1 stays with acct-a, odd is acct-a's own again, the new ones are acct-b's")
		holders, err = a.ClaimCommands(ctx, []string{"c-2"}, []string{"acct-b"})
		require.NoError(t, err)
		assert.Equal(t, []string{"acct-b"}, holders, "a holder's own claim, through another handle, succeeds")
		holders, err = a.ClaimCommands(ctx, []string{"twice", "twice", "c-4"}, []string{"acct-a", "acct-b", "acct-a"})
		require.NoError(t, err)
		assert.Equal(t, []string{"acct-a", "acct-a", "acct-a"}, holders, "a command id twice in one call has one holder: the first")
	})
	t.Run("two writers racing for the same command ids learn one holder each", func(t *testing.T) {
		a, b := newClaims(t)
		var wg sync.WaitGroup
		got := make([][]string, 2)
		for i, c := range []CommandClaims{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids, accts := make([]string, 50), make([]string, 50)
				for j := range ids {
					ids[j], accts[j] = fmt.Sprintf("race-%d", j), fmt.Sprintf("acct-%d", i)
				}
				h, err := c.ClaimCommands(ctx, ids, accts)
				assert.NoError(t, err)
				got[i] = h
			}()
		}
		wg.Wait()
		require.Len(t, got[0], 50)
		assert.Equal(t, got[0], got[1], "both learn the same holder of every raced command id")
	})
}
