package writer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// The writer's store calls, run beside its goroutine (side.go): re-reading a stale account,
// reading an old command's reply back, claiming unique ids, and finding out which accounts a
// failed append conflicted on. Each holds the requests that need its answer; the loop applies
// the answer and puts them back.

// errHeld says a request was handed to side work: it is neither answered nor deferred, and the
// side job puts it back when its answer is in.
var errHeld = errors.New("held by side work")

// storeFailurePause is how long the commands of an append the store failed (not a conflict) wait
// before they are decided again, so a failing store is not hammered; the others go on meanwhile.
const storeFailurePause = 50 * time.Millisecond

// maxHeadProbes bounds the head reads one recovery makes at once.
const maxHeadProbes = 16

// accountLoad is one re-read of a stale account in flight; the requests on the account wait in
// it, in their order.
type accountLoad struct {
	waiters []*request
}

// awaitFresh hands r to the re-read of account id when the account is stale (starting it if
// none is in flight) and reports true; it reports false when the account can be used as it is.
func (w *Writer) awaitFresh(r *request, id string) bool {
	if l := w.cache.loading(id); l != nil {
		l.waiters = append(l.waiters, r)
		return true
	}
	if a, ok := w.cache.accounts[id]; !ok || !a.stale {
		return false
	}
	w.rereadBeside(id).waiters = []*request{r}
	return true
}

// rereadBeside starts the re-read of stale account id beside the loop and returns it: the
// requests on the account wait in it, and are decided again (or answered unavailable when the
// read fails) once it returns.
func (w *Writer) rereadBeside(id string) *accountLoad {
	l := w.cache.startLoad(id)
	store := w.opts.Store
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
		defer cancel()
		recs, err := store.ReadAccount(ctx, id, 0)
		return func() []*request {
			w.cache.loaded(id)
			if err != nil {
				for _, q := range l.waiters {
					w.reject(q, ledger.Reject(ledger.CodeUnavailable, "account %s could not be read: %v", id, err))
				}
				return nil
			}
			w.replaceAccount(id, recs)
			return l.waiters
		}
	})
	return l
}

// readBack reads an old command's reply back from the stream beside the loop (entry is its
// compact idempotency entry) and calls then with the record (nil on a hash collision) or the
// error, on the writer goroutine.
func (w *Writer) readBack(id string, entry uint64, then func(*commandRecord, error) []*request) {
	store := w.opts.Store
	w.side.start(func(ctx context.Context) func() []*request {
		ctx, cancel := context.WithTimeout(ctx, readBackTimeout)
		defer cancel()
		pos, n := splitEntry(entry)
		rec, err := readRecord(ctx, store, id, pos, n)
		return func() []*request {
			if rec != nil {
				w.stats.readBack.Add(1)
			}
			return then(rec, err)
		}
	})
}

// replayCompacted answers r from its compacted record, read back beside the loop; a hash
// collision (the entry is another command's) puts r back to be decided.
func (w *Writer) replayCompacted(r *request, entry uint64) {
	w.readBack(r.CommandID, entry, func(rec *commandRecord, err error) []*request {
		switch {
		case err != nil:
			w.reject(r, ledger.Reject(ledger.CodeUnavailable, "command_id %s: its earlier outcome could not be read back: %v", r.CommandID, err))
		case rec == nil:
			r.notCompacted = true
			return []*request{r}
		default:
			w.replyRecorded(r, rec)
		}
		return nil
	})
}

// claimBeside claims ids for r's account in the shared claims store beside the loop; their
// holders are remembered (a claim is never released) and r is decided again with them known.
func (w *Writer) claimBeside(r *request, ids []string) {
	claims, acct := w.opts.Claims, r.AccountID
	w.side.start(func(ctx context.Context) func() []*request {
		holders := make([]string, len(ids))
		var err error
		for i, id := range ids {
			cctx, cancel := context.WithTimeout(ctx, claimTimeout)
			holders[i], err = claims.Claim(cctx, id, acct)
			cancel()
			if err != nil {
				err = ledger.Reject(ledger.CodeUnavailable, "reserving %s: %v; retry with the same command_id", displayID(id), err)
				break
			}
		}
		return func() []*request {
			if err != nil {
				w.reject(r, asError(err))
				return nil
			}
			for i, id := range ids {
				w.claimed[id] = holders[i]
			}
			return []*request{r}
		}
	})
}

// recoverBeside finds out, beside the loop, which accounts of a failed append moved (or could
// not be read), pauses after a store failure, and then hands the plans to recover. Their
// accounts and commands stay busy until then; every other account goes on.
func (w *Writer) recoverBeside(plans []planned, cause error) {
	w.opts.Log.Warn().Err(cause).Int("commands", len(plans)).Msg("append failed; re-deciding")
	expected := make(map[string]uint64, len(plans))
	for _, p := range plans {
		expected[p.req.AccountID] = p.acct.state.Version
	}
	store, fences := w.opts.Store, w.opts.Fences
	w.side.start(func(ctx context.Context) func() []*request {
		var lost map[int]bool
		if fences != nil && errFenced(cause) {
			lost = fencesMoved(ctx, store, fences, plans) // fence.go
		}
		moved := versionsMoved(ctx, store, expected)
		if !errors.Is(cause, ledger.ErrConflict) {
			t := time.NewTimer(storeFailurePause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		return func() []*request {
			w.release(plans)
			return w.recover(w.dropFenced(plans, lost), moved, cause)
		}
	})
}

// versionsMoved reads the versions of the accounts (at most maxHeadProbes at once, each bounded
// by claimTimeout) and returns those whose version is not the expected one, or could not be read.
func versionsMoved(ctx context.Context, store ledger.Store, expected map[string]uint64) map[string]bool {
	moved := make(map[string]bool)
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxHeadProbes)
	)
	for id, want := range expected {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, claimTimeout)
			defer cancel()
			if v, err := store.AccountVersion(cctx, id); err != nil || v != want {
				mu.Lock()
				moved[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return moved
}
