package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClaimsBucket is the key-value bucket that reserves globally unique ids (license, marketplace item and
// PAYG contract ids) across ledger processes sharing the LEDGER stream. Key: the id's kind and
// value ("license.L-1"); value: the account that holds it. Keys are only ever created.
const ClaimsBucket = "LEDGER_IDS"

// claimReadAttempts and claimReadPause bound the wait for a racing reservation to be stored.
const (
	claimReadAttempts = 100
	claimReadPause    = 5 * time.Millisecond
)

// Claims reserves ids with create-only writes: the first account to create a key holds the id.
type Claims struct {
	kv jetstream.KeyValue
	nc *nats.Conn
}

// OpenClaims opens the reservation bucket, creating it (file storage, one value per key) with
// the given replicas if it is missing. Several processes may race to create it.
func OpenClaims(ctx context.Context, js jetstream.JetStream, replicas int) (*Claims, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      ClaimsBucket,
		Description: "creditledger: which account holds each globally unique id",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, err
	}
	return &Claims{kv: kv, nc: js.Conn()}, nil
}

// ErrClaimsLost means the reservation bucket lacks the mark every node leaves in it while the
// LEDGER stream is still empty, although the stream, with partitioned subjects, holds messages:
// the bucket was deleted or recreated. In such a store it is the only record, across
// partitions, of which account holds each unique id (a node reads only its own partitions), so a
// node that went on would accept ids that another partition's accounts hold.
var ErrClaimsLost = errors.New("the id reservations were lost")

// keptMark is the key every node makes in the reservation bucket while the LEDGER stream is
// empty (its value: the stream's name). Claim keys are "<kind>.<id>", never this.
const keptMark = "_ledger.kept"

// CheckKept makes sure the bucket holds the reservations of every id st holds: it marks the
// bucket while st is empty, and returns ErrClaimsLost when st holds messages and the bucket has
// no mark. Every node runs it before it appends anything, so the mark is made before the first
// event; a store with account subjects is not checked (its nodes also learn ids from the
// stream and the partition snapshots' id lists).
func (c *Claims) CheckKept(ctx context.Context, st *Store) error {
	if !st.PartitionsApart() {
		return nil
	}
	// The head first: whoever appended marked the bucket before, so a head above 0 read now
	// means the mark, read after it, is there unless the bucket was lost.
	head, err := st.Head(ctx)
	if err != nil {
		return err
	}
	if head == 0 {
		return c.MarkKept(ctx)
	}
	kept, err := c.Kept(ctx)
	if err != nil || kept {
		return err
	}
	return fmt.Errorf("%w: bucket %s has no %s mark while stream %s holds %d messages (it was deleted or recreated); with every ledger process stopped, restore it from a backup or rebuild it from the stream (`creditledger reservations rebuild`)",
		ErrClaimsLost, ClaimsBucket, keptMark, StreamName, head)
}

// Claim makes accountID the holder of id unless another account holds it, and returns the
// holder. ids are "kind:value" with values restricted to A-Za-z0-9_- (ledger.ValidID), which
// are valid key tokens.
func (c *Claims) Claim(ctx context.Context, id, accountID string) (string, error) {
	key := strings.Replace(id, ":", ".", 1)
	_, err := c.kv.Create(ctx, key, []byte(accountID))
	if err == nil {
		return accountID, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("reserve %s: %w", id, err)
	}
	return leaderHolder(ctx, c.nc, ClaimsBucket, key, "reservation of "+id)
}

// openBucket opens a key-value bucket, creating it with cfg if it is missing. Several processes
// may race to create it: the loser opens the winner's.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// leaderHolder reads the value of key in bucket from the bucket's leader: a direct get may be
// answered by a replica that has not seen a create yet. The leader refuses a second create as
// soon as the first is in flight, before it has stored it, so the read may briefly find nothing
// and is asked again (claimReadAttempts). what names the key in errors.
func leaderHolder(ctx context.Context, nc *nats.Conn, bucket, key, what string) (string, error) {
	for attempt := 0; attempt < claimReadAttempts; attempt++ {
		seq, holder, err := leaderLast(ctx, nc, "KV_"+bucket, "$KV."+bucket+"."+key)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		if seq != 0 {
			return string(holder), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("read %s: %w", what, ctx.Err())
		case <-time.After(claimReadPause):
		}
	}
	return "", fmt.Errorf("%s exists but could not be read", what)
}

// StoredAt is when JetStream stored the message at position (a direct get on the LEDGER stream).
func (s *Store) StoredAt(ctx context.Context, position uint64) (time.Time, error) {
	m, err := s.stream.GetMsg(ctx, position)
	if err != nil {
		return time.Time{}, fmt.Errorf("message %d: %w", position, err)
	}
	return m.Time, nil
}

// SubscriptionClaim is who a marketplace subscription was last linked (or moved) to, as the
// LEDGER_IDS bucket records it under "subscription.<id>". Every node reads it before a link and
// changes it with a revision-checked write before appending, so two nodes never move one
// subscription at once; the stream stays the authority on who holds it.
type SubscriptionClaim struct {
	// Holder is the account the last link named ("" after an unlink).
	Holder string `json:"holder"`
	// Previous is the holder before it (where a move that never landed leaves the subscription).
	Previous string `json:"previous,omitempty"`
	// At is when the claim was written (a claim that names an account not holding the
	// subscription is a move in flight while young, a move that failed once old).
	At time.Time `json:"at"`
	// Revision is the bucket revision read (0: no claim).
	Revision uint64 `json:"-"`
}

// ErrClaimMoved means a subscription claim changed since it was read.
var ErrClaimMoved = errors.New("subscription claim changed since it was read")

func subscriptionKey(id string) string { return "subscription." + id }

// Subscription reads the claim from the bucket's leader (the zero claim when there is none).
func (c *Claims) Subscription(ctx context.Context, id string) (SubscriptionClaim, error) {
	seq, data, err := leaderLast(ctx, c.nc, "KV_"+ClaimsBucket, "$KV."+ClaimsBucket+"."+subscriptionKey(id))
	if err != nil || seq == 0 {
		return SubscriptionClaim{}, err
	}
	var sc SubscriptionClaim
	if len(data) > 0 {
		if err := json.Unmarshal(data, &sc); err != nil {
			return SubscriptionClaim{}, fmt.Errorf("subscription claim %s: %w", id, err)
		}
	}
	sc.Revision = seq
	return sc, nil
}

// ClaimSubscription writes the claim if the bucket still holds revision (0: none yet);
// ErrClaimMoved otherwise. sc.At is the claimer's time (its injected clock: the writer compares
// a claim's age with that clock); the wall clock stands in when it is zero.
func (c *Claims) ClaimSubscription(ctx context.Context, id string, sc SubscriptionClaim, revision uint64) (uint64, error) {
	if sc.At.IsZero() {
		sc.At = time.Now()
	}
	sc.At = sc.At.UTC()
	data, err := json.Marshal(sc)
	if err != nil {
		return 0, err
	}
	var rev uint64
	if revision == 0 {
		rev, err = c.kv.Create(ctx, subscriptionKey(id), data)
	} else {
		rev, err = c.kv.Update(ctx, subscriptionKey(id), data, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err) {
		return 0, fmt.Errorf("%w: %v", ErrClaimMoved, err)
	}
	return rev, err
}

// MarkKept marks the bucket as holding every reservation the stream implies: for a rebuild
// (server.RebuildReservations) that has just written them.
func (c *Claims) MarkKept(ctx context.Context) error {
	if _, err := c.kv.Create(ctx, keptMark, []byte(StreamName)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("mark %s: %w", ClaimsBucket, err)
	}
	return nil
}

// Kept reports whether the bucket holds the mark, read from the bucket's leader (a replica that
// lags may not have it yet).
func (c *Claims) Kept(ctx context.Context) (bool, error) {
	seq, data, err := leaderLast(ctx, c.nc, "KV_"+ClaimsBucket, "$KV."+ClaimsBucket+"."+keptMark)
	if err != nil {
		return false, fmt.Errorf("read %s in %s: %w", keptMark, ClaimsBucket, err)
	}
	// A deleted or purged mark leaves a marker with no value: not the mark.
	return seq != 0 && string(data) == StreamName, nil
}
