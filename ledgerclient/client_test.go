package ledgerclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledgerclient"
)

// TestClientLinksNoServerCode: importing the client links neither the server nor a logger.
func TestClientLinksNoServerCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/creditledger/creditledger/ledgerclient").CombinedOutput()
	require.NoError(t, err, "%s", out)
	const mod = "github.com/creditledger/creditledger/"
	allowed := map[string]bool{mod + "ledgerclient": true, mod + "commands": true, mod + "api": true, mod + "ledger": true, mod + "events": true}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.Contains(dep, "zerolog"), strings.Contains(dep, "nats-server"), strings.Contains(dep, "prometheus"):
			t.Errorf("the client links %s", dep)
		case strings.HasPrefix(dep, mod) && !allowed[dep]:
			t.Errorf("the client links %s", dep)
		}
	}
}

func newClient(t *testing.T, nc *nats.Conn, opts ...ledgerclient.Option) *ledgerclient.Client {
	t.Helper()
	c, err := ledgerclient.New(nc, opts...)
	require.NoError(t, err)
	return c
}

func TestAgainstALedger(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	ids := 0
	c := newClient(t, l.NC, ledgerclient.WithCommandIDs(func() string { ids++; return "gen-" + string(rune('0'+ids)) }))
	ctx := context.Background()
	meta := commands.Meta{AccountID: "acme"}

	buy, err := c.PurchaseLicense(ctx, commands.PurchaseLicense{Meta: meta, LicenseID: "L-1", Source: "sales", Credits: commands.MustAmount("1500")})
	require.NoError(t, err)
	assert.Equal(t, "gen-1", buy.CommandID, "an empty command_id is generated")
	assert.False(t, buy.Replayed)

	act := &commands.ActivateLicense{Meta: commands.Meta{AccountID: "acme", CommandID: "act-1"}, LicenseID: "L-1"}
	first, err := c.Send(ctx, "activate_license", act)
	require.NoError(t, err)
	again, err := c.Send(ctx, "activate_license", act)
	require.NoError(t, err)
	assert.True(t, again.Replayed, "the same command_id again is a replay")
	assert.Equal(t, first.Position, again.Position)
	assert.Equal(t, "act-1", again.CommandID)

	alloc, err := c.AllocateCredits(ctx, commands.AllocateCredits{Meta: meta, Feature: "file_security", Credits: commands.MustAmount("250")})
	require.NoError(t, err)
	bal, err := c.Balance(ctx, "acme", ledgerclient.MinPosition(alloc.Position))
	require.NoError(t, err)
	assert.Equal(t, "1250", bal.AvailableCredits.String())
	assert.Equal(t, alloc.Position, bal.Position)
	lic, err := c.Licenses(ctx, "acme", ledgerclient.MinPosition(alloc.Position))
	require.NoError(t, err)
	require.Len(t, lic.Licenses, 1)
	assert.Equal(t, "active", lic.Licenses[0].Status)
	sw, err := c.Switches(ctx, "acme")
	require.NoError(t, err)
	assert.NotEmpty(t, sw.Features)
	acct, err := c.Account(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, "acme", acct.AccountID)
	usage, err := c.Usage(ctx, "acme", ledgerclient.Month("2026-01"))
	require.NoError(t, err)
	require.Len(t, usage.Months, 1)

	_, err = c.ReleaseCredits(ctx, commands.ReleaseCredits{Meta: meta, Feature: "file_security", Credits: commands.MustAmount("500")})
	assert.ErrorIs(t, err, ledgerclient.ErrInsufficientAllocation)
	assert.ErrorIs(t, err, ledger.ErrInsufficientAlloc, "the deprecated name is the same value")
	var le *ledgerclient.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "250", le.Data["allocated"])

	_, err = c.Balance(ctx, "nobody")
	assert.ErrorIs(t, err, ledgerclient.ErrNotFound)

	// The fleet read models and the contracts, typed the same way.
	contracts, err := c.Contracts(ctx, "acme")
	require.NoError(t, err)
	assert.Empty(t, contracts.Contracts)
	list, err := c.Accounts(ctx, api.FleetQuery{MinPosition: alloc.Position, Prefix: "ac"})
	require.NoError(t, err)
	require.Len(t, list.Accounts, 1)
	assert.Equal(t, "250", list.Accounts[0].AllocatedCredits.String())
	tot, err := c.Totals(ctx, api.FleetQuery{})
	require.NoError(t, err)
	assert.Equal(t, "1500", tot.Credits.Sold.String())
	charges, err := c.PaygCharges(ctx, "2026-01", api.FleetQuery{})
	require.NoError(t, err)
	assert.Empty(t, charges.Accounts)
	pc, err := c.PaygContracts(ctx, api.FleetQuery{})
	require.NoError(t, err)
	assert.Empty(t, pc.Accounts)
	_, err = c.Totals(ctx, api.FleetQuery{Limit: 5})
	assert.ErrorIs(t, err, ledgerclient.ErrInvalidArgument, "totals are not paged")
}

// responder answers requests on subject with the replies in order (the last one repeats) and
// records the command_id of each; a nil reply is not answered (the request times out).
type responder struct {
	mu      sync.Mutex
	ids     []string
	replies [][]byte
}

func (r *responder) handle(m *nats.Msg) {
	var body struct {
		CommandID string `json:"command_id"`
	}
	_ = json.Unmarshal(m.Data, &body)
	r.mu.Lock()
	n := len(r.ids)
	r.ids = append(r.ids, body.CommandID)
	reply := r.replies[min(n, len(r.replies)-1)]
	r.mu.Unlock()
	if reply != nil {
		_ = m.Respond(reply)
	}
}

func (r *responder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

var (
	unavailable = []byte(`{"ok":false,"error":{"code":"unavailable","message":"ledger is overloaded"}}`)
	accepted    = []byte(`{"ok":true,"account_id":"acme","version":3,"position":9,"events":[]}`)
	rejected    = []byte(`{"ok":false,"error":{"code":"insufficient_credits","message":"no"}}`)
)

func TestRetryKeepsTheCommandID(t *testing.T) {
	t.Parallel()
	noWait := func(int) time.Duration { return 0 }
	cases := []struct {
		name     string
		replies  [][]byte
		attempts int
		wantErr  error
		wantTry  int
		timeout  time.Duration // of each attempt: DefaultTimeout when 0
	}{
		{"unavailable twice, then accepted", [][]byte{unavailable, unavailable, accepted}, 5, nil, 3, 0},
		// Short, as the unanswered try waits it out; the answered one must still come within it.
		{"a timeout, then accepted", [][]byte{nil, accepted}, 3, nil, 2, 2 * time.Second},
		{"always unavailable: bounded", [][]byte{unavailable}, 4, ledgerclient.ErrUnavailable, 4, 0},
		{"a business rejection is final", [][]byte{rejected}, 5, ledgerclient.ErrInsufficientCredits, 1, 0},
		{"no retry by default", [][]byte{unavailable, accepted}, 0, ledgerclient.ErrUnavailable, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nc := startNATS(t)
			r := &responder{replies: c.replies}
			_, err := nc.Subscribe(commands.Subject("allocate_credits"), r.handle)
			require.NoError(t, err)
			require.NoError(t, nc.Flush())
			var opts []ledgerclient.Option
			if c.timeout > 0 {
				opts = append(opts, ledgerclient.WithTimeout(c.timeout))
			}
			if c.attempts > 0 {
				opts = append(opts, ledgerclient.WithRetry(ledgerclient.RetryPolicy{Attempts: c.attempts, Backoff: noWait}))
			}
			cl := newClient(t, nc, opts...)
			res, err := cl.AllocateCredits(context.Background(), commands.AllocateCredits{
				Meta: commands.Meta{AccountID: "acme"}, Feature: "file_security", Credits: commands.MustAmount("1")})
			if c.wantErr != nil {
				assert.ErrorIs(t, err, c.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, uint64(9), res.Position)
			}
			ids := r.seen()
			require.Len(t, ids, c.wantTry)
			for _, id := range ids {
				assert.Equal(t, ids[0], id, "every try carries the same command_id")
			}
			assert.NotEmpty(t, ids[0])
			assert.Equal(t, ids[0], res.CommandID)
		})
	}
}

func TestRetryStopsWithTheContext(t *testing.T) {
	t.Parallel()
	nc := startNATS(t)
	r := &responder{replies: [][]byte{unavailable}}
	_, err := nc.Subscribe(commands.Subject("allocate_credits"), r.handle)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cl := newClient(t, nc, ledgerclient.WithRetry(ledgerclient.RetryPolicy{Attempts: 10, Backoff: func(n int) time.Duration {
		cancel() // the caller gives up during the first backoff
		return time.Hour
	}}))
	_, err = cl.AllocateCredits(ctx, commands.AllocateCredits{Meta: commands.Meta{AccountID: "acme"}, Feature: "f", Credits: commands.MustAmount("1")})
	assert.ErrorIs(t, err, ledgerclient.ErrUnavailable)
	assert.Len(t, r.seen(), 1)
}

func TestOptionsAreValidated(t *testing.T) {
	t.Parallel()
	_, err := ledgerclient.New(nil)
	assert.ErrorIs(t, err, ledgerclient.ErrConfig)
	nc := &nats.Conn{}
	for _, o := range []ledgerclient.Option{
		ledgerclient.WithTimeout(0), ledgerclient.WithCommandIDs(nil),
		ledgerclient.WithRetry(ledgerclient.RetryPolicy{Attempts: 0}),
		ledgerclient.WithRetry(ledgerclient.RetryPolicy{Attempts: ledgerclient.MaxAttempts + 1}),
	} {
		_, err := ledgerclient.New(nc, o)
		assert.True(t, errors.Is(err, ledgerclient.ErrConfig), "%v", err)
	}
	b := ledgerclient.ExponentialBackoff(10*time.Millisecond, 50*time.Millisecond)
	assert.Equal(t, []time.Duration{10, 20, 40, 50, 50}, []time.Duration{b(1) / time.Millisecond, b(2) / time.Millisecond,
		b(3) / time.Millisecond, b(4) / time.Millisecond, b(5) / time.Millisecond})
}
