package jetstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/partition"
)

// LeaseBucket is the key-value bucket of partition leases ("p.<n>": the owning node) and node
// heartbeats ("node.<name>"). The bucket's max age is the lease TTL: a key not rewritten within
// it disappears, so a dead node's leases lapse by themselves.
const LeaseBucket = "LEDGER_LEASES"

// DefaultLeaseTTL is the lease TTL of a bucket created without one: a killed node's partitions
// are free this long after its last renewal.
const DefaultLeaseTTL = 5 * time.Second

// Leases is partition.Leases on a JetStream key-value bucket: acquire is a create-only write,
// renew and release are writes checked against the revision the holder last wrote (the server
// refuses them when another node wrote since), and expiry is the bucket's max age.
type Leases struct {
	nc  *nats.Conn
	kv  jetstream.KeyValue
	ttl time.Duration
	// members is kept by a watcher on the heartbeats (watchMembers): listing keys on every
	// step would create a consumer each time.
	mu      sync.Mutex
	members map[string]time.Time
	watcher jetstream.KeyWatcher
}

// OpenLeases opens the lease bucket, creating it with ttl (DefaultLeaseTTL when 0) if missing.
// An existing bucket keeps its TTL.
func OpenLeases(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration) (*Leases, error) {
	if replicas < 1 {
		replicas = 1
	}
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "creditledger: which node writes each partition (leases expire after the TTL)",
		History:     1,
		TTL:         ttl,
		// Memory: leases live seconds and are rewritten every tick (64 writes a second per
		// node by default); fsyncing them competed with the ledger's appends for the disk. A
		// whole cluster that restarts finds the bucket empty and takes the leases afresh.
		Storage:  jetstream.MemoryStorage,
		Replicas: replicas,
	})
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s status: %w", LeaseBucket, err)
	}
	if st.TTL() <= 0 {
		return nil, fmt.Errorf("bucket %s has no TTL: leases would never expire", LeaseBucket)
	}
	l := &Leases{nc: js.Conn(), kv: kv, ttl: st.TTL(), members: map[string]time.Time{}}
	if err := l.watchMembers(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// watchMembers follows the heartbeats: a node is a member while its last heartbeat arrived
// within the TTL (measured on this process's clock from when it arrived) and it has not left.
func (l *Leases) watchMembers(ctx context.Context) error {
	w, err := l.kv.WatchFiltered(context.WithoutCancel(ctx), []string{nodePrefix + ">"})
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", LeaseBucket, err)
	}
	l.watcher = w
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue // end of the initial values
			}
			name := strings.TrimPrefix(e.Key(), nodePrefix)
			l.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut {
				l.members[name] = time.Now()
			} else {
				delete(l.members, name) // left
			}
			l.mu.Unlock()
		}
	}()
	return nil
}

// Close stops following the heartbeats.
func (l *Leases) Close() {
	if l.watcher != nil {
		_ = l.watcher.Stop()
	}
}

var _ partition.Leases = (*Leases)(nil)

func leaseKey(p int) string { return "p." + strconv.Itoa(p) }

const nodePrefix = "node."

// TTL is the bucket's max age.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Heartbeat rewrites the node's key.
func (l *Leases) Heartbeat(ctx context.Context, node string) error {
	_, err := l.kv.Put(ctx, nodePrefix+node, []byte(node))
	return err
}

// Leave deletes the node's heartbeat.
func (l *Leases) Leave(ctx context.Context, node string) error {
	l.mu.Lock()
	delete(l.members, node)
	l.mu.Unlock()
	return l.kv.Delete(ctx, nodePrefix+node)
}

// Nodes lists the nodes whose heartbeat arrived within the TTL.
func (l *Leases) Nodes(context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n, seen := range l.members {
		if time.Since(seen) < l.ttl {
			out = append(out, n)
		} else {
			delete(l.members, n)
		}
	}
	return out, nil
}

// Acquire creates the partition's key (only if absent, deleted or expired). A key that names
// node itself was left by this node's previous run (killed before it could hand over; node
// names are unique and stable): it is taken over with a revision-checked write rather than
// waited out.
func (l *Leases) Acquire(ctx context.Context, p int, node string) (uint64, error) {
	rev, err := l.kv.Create(ctx, leaseKey(p), []byte(node))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return rev, err
	}
	cur, ok := l.ours(ctx, p, node)
	if !ok {
		return 0, partition.ErrHeld
	}
	rev, err = l.kv.Update(ctx, leaseKey(p), []byte(node), cur)
	if err != nil {
		return 0, partition.ErrHeld
	}
	return rev, nil
}

// Holder reads the partition's key from the bucket's leader (a replica that lags may show an
// older holder): the node it names and its revision, "" and 0 when there is none (a delete or
// purge marker names nobody).
func (l *Leases) Holder(ctx context.Context, p int) (string, uint64, error) {
	seq, data, err := leaderLast(ctx, l.nc, "KV_"+LeaseBucket, "$KV."+LeaseBucket+"."+leaseKey(p))
	if err != nil {
		return "", 0, err
	}
	if seq == 0 || len(data) == 0 {
		return "", 0, nil
	}
	return string(data), seq, nil
}

// Seize takes the partition's key for node with a write checked against revision (the keeper
// read it there, naming a node proven down, and saw it not move since) instead of waiting for
// the key to lapse; a key that moved meanwhile is left (ErrHeld).
func (l *Leases) Seize(ctx context.Context, p int, node string, revision uint64) (uint64, error) {
	rev, err := l.kv.Update(ctx, leaseKey(p), []byte(node), revision)
	if err != nil {
		return 0, partition.ErrHeld
	}
	return rev, nil
}

// Renew rewrites the key if it is still at revision. A write whose answer was lost (a timeout,
// a cancelled step) leaves the key one revision ahead of the holder: a key that still names
// node is renewed at its current revision (node names are unique, so it is this holder's).
func (l *Leases) Renew(ctx context.Context, p int, node string, revision uint64) (uint64, error) {
	rev, err := l.kv.Update(ctx, leaseKey(p), []byte(node), revision)
	if err == nil || !(errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err)) {
		return rev, err
	}
	if cur, ok := l.ours(ctx, p, node); ok {
		if rev, err := l.kv.Update(ctx, leaseKey(p), []byte(node), cur); err == nil {
			return rev, nil
		}
	}
	return 0, fmt.Errorf("%w: %v", partition.ErrLost, err)
}

// ours reads the key from the bucket's leader and reports its revision when it names node.
func (l *Leases) ours(ctx context.Context, p int, node string) (uint64, bool) {
	seq, data, err := leaderLast(ctx, l.nc, "KV_"+LeaseBucket, "$KV."+LeaseBucket+"."+leaseKey(p))
	return seq, err == nil && seq != 0 && string(data) == node
}

// Release deletes the key if it is still at revision (or still names node: see Renew).
func (l *Leases) Release(ctx context.Context, p int, node string, revision uint64) error {
	err := l.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(revision))
	if err == nil || !(errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err)) {
		return err
	}
	if cur, ok := l.ours(ctx, p, node); ok {
		return l.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(cur))
	}
	return nil // someone else's now: nothing of ours to give back
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeWrongLastSeq || apiErr.ErrorCode == errCodeWrongLastSeqConst)
}
