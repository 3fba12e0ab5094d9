package productiontest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/server"
)

// A partition handed back and forth (a -> b -> a -> b: b joins, stops gracefully, joins again):
// each node that takes it back decides on what the other appended meanwhile, never on its own
// memory of the partition from before it lost it, and every command answered before a move
// (accepted, rejected, the rejections compacted by the hand-over's snapshot) is answered the same
// by every later owner.
func TestPartitionHandedBackAndForth(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	a := start(t, sharedNode(t, url, "a", nil))
	require.Eventually(t, func() bool { return len(a.Partitions()) == a.PartitionCount() }, waitFor, pollTick)
	nc := connectTo(t, url)
	cl := client(t, nc)
	accounts := fundedAccounts(t, cl, "back", 8) // 1,000,000 credits each, on a

	type answer struct {
		cmd  commands.AllocateCredits
		ok   commands.Accepted
		code ledger.Code
	}
	var answers []answer
	send := func(cmd commands.AllocateCredits) answer {
		t.Helper()
		var an answer
		setupRetry(t, func() error {
			ok, err := cl.AllocateCredits(ctxT(t), cmd)
			if c := code(err); c != "" && c != ledger.CodeUnavailable {
				an = answer{cmd: cmd, code: c}
				return nil
			}
			an = answer{cmd: cmd, ok: ok}
			return err
		})
		answers = append(answers, an)
		return an
	}
	// round r spends 300,000 of each account's credits through its owner then (accepted), and
	// asks for one more than is left (rejected); then every command so far is retried.
	left := 1_000_000
	round := func(r string) {
		t.Helper()
		for _, acct := range accounts {
			an := send(allocate(acct+"-spend-"+r, acct, "300000"))
			require.Empty(t, an.code, "round %s: %s spends 300,000 of %d", r, acct, left)
			an = send(allocate(acct+"-over-"+r, acct, strconv.Itoa(left-300_000+1)))
			require.Equal(t, ledger.CodeInsufficientCredits, an.code, "round %s: %s has %d left", r, acct, left-300_000)
		}
		left -= 300_000
		for _, an := range answers {
			again, err := cl.AllocateCredits(ctxT(t), an.cmd)
			if an.code != "" {
				assert.Equal(t, an.code, code(err), "round %s: the retry of %s gets its first answer", r, an.cmd.CommandID)
				continue
			}
			if assert.NoError(t, err, "round %s: the retry of %s", r, an.cmd.CommandID) {
				assert.Equal(t, an.ok.Position, again.Position, "round %s: the retry of %s gets its first answer", r, an.cmd.CommandID)
			}
		}
	}
	round("a1")
	// Meanwhile a load of accepted and rejected commands runs through every hand-over.
	ml := startMixedLoad(t, []*nats.Conn{connectTo(t, url), connectTo(t, url)}, accounts, 4)
	ml.wait(t, 50, "load before b joins")

	b := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b)
	ml.wait(t, 50, "load after b joined")
	var onB []string
	for _, acct := range accounts {
		if holds(b, acct) {
			onB = append(onB, acct)
		}
	}
	require.NotEmpty(t, onB, "b took some of the accounts' partitions")
	round("b1")

	b.Shutdown(context.Background()) // hands its partitions back to a
	require.Eventually(t, func() bool { return len(a.Partitions()) == a.PartitionCount() && a.Settled() }, waitFor, pollTick)
	ml.wait(t, 50, "load after b left")
	round("a2")

	b2 := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b2)
	ml.wait(t, 50, "load after b joined again")
	ml.finish(t, client(t, nc))
	// Every account has 100,000 left: a node that decided on its memory from before it lost the
	// partition would let it spend 300,000 more.
	for _, acct := range accounts {
		an := send(allocate(acct+"-spend-b2", acct, "300000"))
		assert.Equal(t, ledger.CodeInsufficientCredits, an.code, "%s has 100,000 left", acct)
	}
	retryAll := func(r string) {
		t.Helper()
		for _, an := range answers {
			again, err := cl.AllocateCredits(ctxT(t), an.cmd)
			if an.code != "" {
				assert.Equal(t, an.code, code(err), "%s: the retry of %s gets its first answer", r, an.cmd.CommandID)
				continue
			}
			if assert.NoError(t, err, "%s: the retry of %s", r, an.cmd.CommandID) {
				assert.Equal(t, an.ok.Position, again.Position, "%s: the retry of %s gets its first answer", r, an.cmd.CommandID)
			}
		}
	}
	retryAll("b2")
}

// mixedLoad sends allocations of 1 (accepted) and of more than any account ever holds
// (rejected) through several connections, each retried with its command_id while the answer is
// unavailable, and records the first definite answer of each.
type mixedLoad struct {
	mu      sync.Mutex
	answers map[string]mixedAnswer
	total   atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

type mixedAnswer struct {
	cmd      commands.AllocateCredits
	position uint64
	code     ledger.Code
}

func startMixedLoad(t *testing.T, conns []*nats.Conn, accounts []string, workers int) *mixedLoad {
	t.Helper()
	l := &mixedLoad{answers: map[string]mixedAnswer{}, stop: make(chan struct{})}
	runWorkers(&l.wg, l.stop, conns, accounts, workers, func(cl *commands.Client, w, seq int, acct string) bool {
		amount := "1"
		if seq%2 == 1 {
			amount = "900000000"
		}
		cmd := allocate(fmt.Sprintf("mixed-w%d-%d", w, seq), acct, amount)
		for attempt := 0; attempt < 40; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			a, err := cl.AllocateCredits(ctx, cmd)
			cancel()
			if c := code(err); err == nil || (c != "" && c != ledger.CodeUnavailable) {
				l.mu.Lock()
				l.answers[cmd.CommandID] = mixedAnswer{cmd: cmd, position: a.Position, code: c}
				l.mu.Unlock()
				l.total.Add(1)
				break
			}
			time.Sleep(20 * time.Millisecond) // a client's retry pacing, not synchronisation
		}
		return true
	})
	return l
}

func (l *mixedLoad) wait(t *testing.T, n int64, what string) {
	t.Helper()
	waitMore(t, &l.total, n, what)
}

// finish stops the load and retries every command answered: each gets its first answer.
func (l *mixedLoad) finish(t *testing.T, cl *commands.Client) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for id, an := range l.answers {
		again, err := cl.AllocateCredits(ctxT(t), an.cmd)
		if an.code != "" {
			assert.Equal(t, an.code, code(err), "the retry of %s gets its first answer", id)
			continue
		}
		if assert.NoError(t, err, "the retry of %s", id) {
			assert.Equal(t, an.position, again.Position, "the retry of %s gets its first answer", id)
		}
	}
}

// A node stopping gracefully while commands wait in its writer for an append in flight: once
// the append ends they are no longer its to decide, and the node passes them to the partition's
// next owner. Every one is answered, by the new owner, not lost with the stopping node's
// connection (on the previous build a command the node had received itself was passed on by a
// goroutine whose connection the stop closed before the new owner took the partition: its client
// waited out its whole timeout for an answer that never came).
func TestGracefulStopAnswersTheCommandsItPassesOn(t *testing.T) {
	t.Parallel()
	url := jetStreamServer(t)
	appends := &gate{}
	a := start(t, sharedNode(t, url, "a", &server.Hooks{BeforeAppend: appends.pass}))
	b := start(t, sharedNode(t, url, "b", nil))
	waitSplit(t, a, b)
	nc := connectTo(t, url)
	acct := accountOn(t, a, "stop")
	_, err := client(t, nc).PurchaseLicense(ctxT(t), purchase("stop-buy", acct, "stop-L", "1000"))
	require.NoError(t, err)
	_, err = client(t, nc).ActivateLicense(ctxT(t), activate("stop-act", acct, "stop-L"))
	require.NoError(t, err)

	appends.close(t)
	const sent = 16 // sent at random to a's and b's public endpoints: some reach a's own
	type reply struct {
		id  string
		err error
	}
	replies := make(chan reply, sent)
	cl, err := commands.NewClient(nc, 2*waitFor)
	require.NoError(t, err)
	for i := 0; i < sent; i++ {
		go func() {
			id := fmt.Sprintf("stop-%d", i)
			_, err := cl.AllocateCredits(context.Background(), allocate(id, acct, "1"))
			replies <- reply{id, err}
		}()
	}
	require.Eventually(t, func() bool { return appends.waiting.Load() > 0 }, waitFor, pollTick, "a's append never started")
	require.NoError(t, nc.Flush()) // every request is with a node (the server delivered them)

	stopped := make(chan struct{})
	go func() { defer close(stopped); a.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return len(a.Partitions()) == 0 }, waitFor, pollTick, "a hands its partitions over")
	appends.open() // the append ends; the commands behind it are a's no more
	for i := 0; i < sent; i++ {
		r := <-replies
		assert.NoError(t, r.err, "%s is answered", r.id)
	}
	<-stopped
}
