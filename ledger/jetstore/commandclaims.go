package jetstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CommandsBucket is the key-value bucket that records, across partitions, which account each
// command_id was first used for. A partition's owner knows the command ids of its own partitions
// only; without this record a command_id used on an account of one partition could be used again,
// with another body, on an account of another partition owned by another node, where a single
// node answers idempotency_key_reused. Key: "c.<hash of the command_id>"; value: the account.
const CommandsBucket = "LEDGER_COMMANDS"

// CommandRetention bounds how long a command_id is held for its account across partitions: as
// long as a rejection is replayed (RejectionRetention), so the bucket's size is bounded by the
// commands of that window rather than growing for ever.
const CommandRetention = RejectionRetention

// CommandClaims records command ids with create-only writes: the first account to create a
// command_id's key holds it.
type CommandClaims struct {
	js jetstream.JetStream
	nc *nats.Conn
}

// OpenCommandClaims opens the command bucket, creating it (file storage, one value per key,
// CommandRetention) with the given replicas if it is missing. Several processes may race to
// create it.
func OpenCommandClaims(ctx context.Context, js jetstream.JetStream, replicas int) (*CommandClaims, error) {
	if replicas < 1 {
		replicas = 1
	}
	_, err := js.KeyValue(ctx, CommandsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      CommandsBucket,
			Description: "creditledger: which account each command_id was first used for",
			History:     1,
			TTL:         CommandRetention,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			_, err = js.KeyValue(ctx, CommandsBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", CommandsBucket, err)
	}
	return &CommandClaims{js: js, nc: js.Conn()}, nil
}

// commandKey is the bucket key of a command id: command ids are any 1-128 bytes, key tokens are
// not, so the key is the first 128 bits of its SHA-256 (a collision between two command ids is
// about one in 2^64 after 2^32 of them).
func commandKey(commandID string) string {
	sum := sha256.Sum256([]byte(commandID))
	return "c." + hex.EncodeToString(sum[:16])
}

// ClaimCommands makes accounts[i] the holder of commandIDs[i] unless another account holds it,
// and returns the holders in order. The creates are published at once and their acknowledgements
// awaited together (one round trip for a round's commands, not one each); a command id held
// already is read back from the bucket's leader. An error leaves some of them unknown.
func (c *CommandClaims) ClaimCommands(ctx context.Context, commandIDs, accounts []string) ([]string, error) {
	holders := make([]string, len(commandIDs))
	acks := make([]jetstream.PubAckFuture, len(commandIDs))
	for i, id := range commandIDs {
		m := nats.NewMsg("$KV." + CommandsBucket + "." + commandKey(id))
		m.Data = []byte(accounts[i])
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		f, err := c.js.PublishMsgAsync(m)
		if err != nil {
			return nil, fmt.Errorf("record command_id: %w", err)
		}
		acks[i] = f
	}
	var held []int
	for i, f := range acks {
		select {
		case <-f.Ok():
			holders[i] = accounts[i]
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
				apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) { // R1, R>1
				held = append(held, i)
				continue
			}
			return nil, fmt.Errorf("record command_id: %w", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("record command_id: %w", ctx.Err())
		}
	}
	for _, i := range held {
		h, err := c.holder(ctx, commandIDs[i])
		if err != nil {
			return nil, err
		}
		holders[i] = h
	}
	return holders, nil
}

// holder reads the account a command id's key names from the bucket's leader (a replica may not
// have it yet). The leader refuses a second create as soon as the first is in flight, before it
// has stored it, so the read may briefly find nothing.
func (c *CommandClaims) holder(ctx context.Context, commandID string) (string, error) {
	subject := "$KV." + CommandsBucket + "." + commandKey(commandID)
	for attempt := 0; attempt < claimReadAttempts; attempt++ {
		seq, holder, err := leaderLast(ctx, c.nc, "KV_"+CommandsBucket, subject)
		if err != nil {
			return "", fmt.Errorf("read the account of command_id %q: %w", commandID, err)
		}
		if seq != 0 {
			return string(holder), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("read the account of command_id %q: %w", commandID, ctx.Err())
		case <-time.After(claimReadPause):
		}
	}
	return "", fmt.Errorf("the account of command_id %q is recorded but could not be read", commandID)
}
