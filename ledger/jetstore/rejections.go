package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// The rejection log: business rejections are not events (they changed no account), but a retry
// of a rejected command_id must get the same answer after a crash too, so they are kept in a
// stream of their own, written before the rejection is sent.
const (
	RejectionStream        = "LEDGER_REJECTIONS"
	RejectionSubjectPrefix = "ledger.rejections."
	// RejectionRetention bounds how long a rejection is replayed to retries.
	RejectionRetention = 30 * 24 * time.Hour
)

// rejectionDoc is one remembered rejection as the stream stores it.
type rejectionDoc struct {
	CommandID string            `json:"command_id"`
	AccountID string            `json:"account_id"`
	BodyHash  string            `json:"body_hash"`
	Code      ledger.Code       `json:"code"`
	Message   string            `json:"message"`
	Data      map[string]string `json:"data,omitempty"`
}

// RejectionLog appends to and reads the rejection stream.
type RejectionLog struct {
	store  *Store
	stream jetstream.Stream
}

// OpenRejections creates or binds the rejection stream.
func OpenRejections(ctx context.Context, s *Store, replicas int) (*RejectionLog, error) {
	if replicas < 1 {
		replicas = 1
	}
	st, err := s.js.Stream(ctx, RejectionStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:               RejectionStream,
			Description:        "creditledger: rejected commands, replayed to retries of the same command_id",
			Subjects:           []string{RejectionSubjectPrefix + ">"},
			Storage:            jetstream.FileStorage,
			MaxAge:             RejectionRetention,
			AllowAtomicPublish: true,
			AllowDirect:        true,
			Replicas:           replicas,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("rejection stream: %w", err)
	}
	return &RejectionLog{store: s, stream: st}, nil
}

// AppendRejections stores rejections atomically and returns the position of the last.
func (l *RejectionLog) AppendRejections(ctx context.Context, rs []ledger.Rejection) (uint64, error) {
	recs := make([]ledger.Record, len(rs))
	for i, r := range rs {
		b, err := json.Marshal(rejectionDoc{CommandID: r.CommandID, AccountID: r.AccountID, BodyHash: r.BodyHash,
			Code: r.Err.Code, Message: r.Err.Message, Data: r.Err.Data})
		if err != nil {
			return 0, fmt.Errorf("encode rejection: %w", err)
		}
		recs[i] = ledger.Record{AccountID: r.AccountID, Data: b}
	}
	pos, err := l.store.appendBatch(ctx, func(a string) string { return RejectionSubjectPrefix + a }, recs)
	if err != nil {
		return 0, err
	}
	return pos[len(pos)-1], nil
}

// ReadRejections calls fn for every rejection from position from to the stream's head; it
// returns the head. Messages that are not rejection documents are skipped: only the ledger may
// publish here.
func (l *RejectionLog) ReadRejections(ctx context.Context, from uint64, fn func(ledger.Rejection)) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("rejection stream info: %w", err)
	}
	head := info.State.LastSeq
	if from < info.State.FirstSeq {
		from = info.State.FirstSeq
	}
	if head == 0 || from > head || info.State.Msgs == 0 {
		return head, nil
	}
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return 0, fmt.Errorf("rejection consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, fmt.Errorf("read rejections: %w", err)
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return 0, fmt.Errorf("read rejections: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, fmt.Errorf("rejection metadata: %w", err)
		}
		var r rejectionDoc
		if json.Unmarshal(m.Data(), &r) == nil && r.CommandID != "" {
			fn(ledger.Rejection{CommandID: r.CommandID, AccountID: r.AccountID, BodyHash: r.BodyHash,
				Err: &ledger.Error{Code: r.Code, Message: r.Message, Data: r.Data}})
		}
		if md.Sequence.Stream >= head {
			return head, nil
		}
	}
}
