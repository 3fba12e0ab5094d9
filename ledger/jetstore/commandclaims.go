package jetstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
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
// CommandRetention) with the given replicas if it is missing, and allows atomic batches on it
// (a round's claims are one batch: ClaimCommands). Several processes may race to create it.
func OpenCommandClaims(ctx context.Context, js jetstream.JetStream, replicas int) (*CommandClaims, error) {
	if replicas < 1 {
		replicas = 1
	}
	if _, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      CommandsBucket,
		Description: "creditledger: which account each command_id was first used for",
		History:     1,
		TTL:         CommandRetention,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}); err != nil {
		return nil, err
	}
	// A key-value bucket is made without atomic batches; the bucket's stream is updated to allow
	// them (once; every process that finds them off does the same update).
	st, err := js.Stream(ctx, commandsStream)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", CommandsBucket, err)
	}
	if cfg := st.CachedInfo().Config; !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("allow atomic batches on %s: %w", commandsStream, err)
		}
	}
	return &CommandClaims{js: js, nc: js.Conn()}, nil
}

// commandsStream is the command bucket's stream.
const commandsStream = "KV_" + CommandsBucket

// commandKey is the bucket key of a command id: command ids are any 1-128 bytes, key tokens are
// not, so the key is the first 128 bits of its SHA-256 (a collision between two command ids is
// about one in 2^64 after 2^32 of them).
func commandKey(commandID string) string {
	sum := sha256.Sum256([]byte(commandID))
	return "c." + hex.EncodeToString(sum[:16])
}

// ClaimCommands makes accounts[i] the holder of commandIDs[i] unless another account holds it,
// and returns the holders in order. A round's claims are one atomic batch (one replicated write
// for all of them, where a create each cost one each); when that batch is refused (a command id
// held already, or twice in it) or its outcome is unknown, each is created again on its own,
// which finds its holder either way (a claim the batch stored is this account's own). An error
// leaves some of them unknown.
func (c *CommandClaims) ClaimCommands(ctx context.Context, commandIDs, accounts []string) ([]string, error) {
	return c.claim(ctx, commandIDs, accounts, nil)
}

// ClaimCommandsCreated is ClaimCommands that also says which claims it created (false: the key
// was there already, for this account or another), for `command-ids record`'s counts. A claim
// whose create landed but was not answered, and was found on the second try, counts as found.
func (c *CommandClaims) ClaimCommandsCreated(ctx context.Context, commandIDs, accounts []string) (holders []string, created []bool, err error) {
	created = make([]bool, len(commandIDs))
	holders, err = c.claim(ctx, commandIDs, accounts, created)
	return holders, created, err
}

// claim is ClaimCommands, setting created[i] (when created is not nil) where it created the
// claim of commandIDs[i].
func (c *CommandClaims) claim(ctx context.Context, commandIDs, accounts []string, created []bool) ([]string, error) {
	holders := make([]string, 0, len(commandIDs))
	for from := 0; from < len(commandIDs); from += MaxBatch {
		to := min(from+MaxBatch, len(commandIDs))
		var made []bool
		if created != nil {
			made = created[from:to]
		}
		if to-from > 1 && c.claimBatch(ctx, commandIDs[from:to], accounts[from:to]) == nil {
			holders = append(holders, accounts[from:to]...)
			for i := range made {
				made[i] = true
			}
			continue
		}
		h, err := c.claimEach(ctx, commandIDs[from:to], accounts[from:to], made)
		if err != nil {
			return nil, err
		}
		holders = append(holders, h...)
	}
	return holders, nil
}

// claimBatch creates every command id's key for its account in one atomic batch, each with an
// expected last subject sequence of 0: all are stored, or none.
func (c *CommandClaims) claimBatch(ctx context.Context, commandIDs, accounts []string) error {
	batchID := nuid.Next()
	for i, id := range commandIDs {
		m := claimMsg(id, accounts[i])
		m.Header.Set("Nats-Batch-Id", batchID)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < len(commandIDs)-1 {
			if err := c.nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		resp, err := c.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return err
		}
		var ack pubAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return err
		}
		if ack.Error != nil {
			return fmt.Errorf("%s (err_code %d)", ack.Error.Description, ack.Error.ErrCode)
		}
	}
	return nil
}

// claimMsg is the create of a command id's key for account.
func claimMsg(commandID, account string) *nats.Msg {
	m := nats.NewMsg("$KV." + CommandsBucket + "." + commandKey(commandID))
	m.Data = []byte(account)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	return m
}

// claimEach creates the command ids' keys one by one (published at once, acknowledgements awaited
// together) and reads the holder of each that is held already from the bucket's leader; it sets
// created[i] (created may be nil) for each it created.
func (c *CommandClaims) claimEach(ctx context.Context, commandIDs, accounts []string, created []bool) ([]string, error) {
	holders := make([]string, len(commandIDs))
	acks := make([]jetstream.PubAckFuture, len(commandIDs))
	for i, id := range commandIDs {
		f, err := c.js.PublishMsgAsync(claimMsg(id, accounts[i]))
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
			if created != nil {
				created[i] = true
			}
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

// holder reads the account a command id's key names from the bucket's leader.
func (c *CommandClaims) holder(ctx context.Context, commandID string) (string, error) {
	return leaderHolder(ctx, c.nc, CommandsBucket, commandKey(commandID), fmt.Sprintf("the account of command_id %q", commandID))
}
