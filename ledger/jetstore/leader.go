package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// errCodeNoMessage is JetStream's "no message found".
const errCodeNoMessage = 10037

// LeaderAccountHead is the position of the account's last event as the LEDGER stream's leader
// knows it (0 if it has none). Unlike AccountHead, which is a direct get that any replica may
// answer, a lagging follower included, this goes to the leader, which holds every acknowledged
// append: a process deciding a command on a stream other processes append to reads this.
func (s *Store) LeaderAccountHead(ctx context.Context, accountID string) (uint64, error) {
	seq, _, err := leaderLast(ctx, s.nc, StreamName, Subject(accountID))
	if err != nil {
		return 0, fmt.Errorf("last message of %s: %w", accountID, err)
	}
	return seq, nil
}

// leaderLast reads the last message on subject from the stream's leader (STREAM.MSG.GET, not a
// direct get); seq is 0 when there is none.
func leaderLast(ctx context.Context, nc *nats.Conn, stream, subject string) (uint64, []byte, error) {
	body, err := json.Marshal(map[string]string{"last_by_subj": subject})
	if err != nil {
		return 0, nil, err
	}
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return 0, nil, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == errCodeNoMessage:
		return 0, nil, nil
	case resp.Error != nil:
		return 0, nil, resp.Error
	case resp.Message == nil:
		return 0, nil, errors.New("empty answer")
	}
	return resp.Message.Seq, resp.Message.Data, nil
}

// ReadAccountTo returns one account's records up to position head, its last event: the
// consumer waits (within ctx) until the replica it reads from has caught up to head.
func (s *Store) ReadAccountTo(ctx context.Context, accountID string, head uint64) ([]ledger.Record, error) {
	if head == 0 {
		return nil, nil
	}
	var out []ledger.Record
	err := s.consume(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{Subject(accountID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}, head, func(r ledger.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}
