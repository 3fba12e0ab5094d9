package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

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

// directBatch bounds the messages one batched direct get returns.
const directBatch = 1000

// ReadAccountTo returns one account's records up to position head, its last event, with batched
// direct gets (no consumer: an ephemeral consumer placed on another node can miss its first pull
// request while the route learns of it, and stall for the pull's whole expiry). The replica that
// answers may lag the leader by a few milliseconds, or (catching up) not answer at all: each
// attempt waits at most directWait for an answer, and attempts repeat until one reaches head,
// within ctx.
func (s *Store) ReadAccountTo(ctx context.Context, accountID string, head uint64) ([]ledger.Record, error) {
	if head == 0 {
		return nil, nil
	}
	for {
		recs, err := s.directAttempt(ctx, accountID, head)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("read account %s: %w", accountID, err)
		}
		if n := len(recs); err == nil && n > 0 && recs[n-1].Position >= head {
			for n > 0 && recs[n-1].Position > head { // appended since head was read
				n--
			}
			return recs[:n], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read account %s up to %d: %w", accountID, head, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// directWait bounds the wait for one answer of a direct get.
const directWait = 250 * time.Millisecond

// directAttempt reads the account's range on a fresh inbox, so a late answer to an abandoned
// attempt is never mistaken for this one's.
func (s *Store) directAttempt(ctx context.Context, accountID string, head uint64) ([]ledger.Record, error) {
	sub, err := s.nc.SubscribeSync(s.nc.NewRespInbox())
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	return s.directRange(ctx, sub, accountID, head)
}

// directRange reads the account's messages from position 1 up to head in batches, as far as the
// answering replica has them.
func (s *Store) directRange(ctx context.Context, sub *nats.Subscription, accountID string, head uint64) ([]ledger.Record, error) {
	var out []ledger.Record
	from := uint64(1)
	for from <= head {
		body, err := json.Marshal(map[string]any{"seq": from, "next_by_subj": Subject(accountID), "batch": directBatch, "up_to_seq": head})
		if err != nil {
			return nil, err
		}
		if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+StreamName, sub.Subject, body); err != nil {
			return nil, err
		}
		got, more := 0, false
		for {
			wctx, cancel := context.WithTimeout(ctx, directWait)
			m, err := sub.NextMsgWithContext(wctx)
			cancel()
			if err != nil {
				return nil, err
			}
			switch status := m.Header.Get("Status"); status {
			case "":
			case "204": // end of batch
				more = got == directBatch && m.Header.Get("Nats-Num-Pending") != "0"
			case "404": // nothing (more) on the subject at this replica
			default:
				return nil, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
			}
			if m.Header.Get("Status") != "" {
				break
			}
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("direct get: sequence %q: %w", m.Header.Get("Nats-Sequence"), err)
			}
			out = append(out, ledger.Record{AccountID: accountID, Data: m.Data, Position: seq})
			from, got = seq+1, got+1
		}
		if !more {
			break
		}
	}
	return out, nil
}

// sharedSaveTimeout bounds one snapshot save on a shared stream: a save whose acknowledgements
// are lost while a peer hands over leadership (nodes stopping together) would otherwise wait out
// the caller's whole deadline. A snapshot is only a restart shortcut; a lost one costs a replay.
const sharedSaveTimeout = 15 * time.Second

// ForNode returns the same bucket with every name prefixed by node, so several processes that
// share the stream keep their own snapshots (each is a valid prefix of the one stream; separate
// names keep them from writing one object at once), and with saves bounded by sharedSaveTimeout.
func (s *Snapshots) ForNode(node string) *Snapshots {
	c := *s
	c.prefix, c.saveTimeout = node+"/", sharedSaveTimeout
	return &c
}
