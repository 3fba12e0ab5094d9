package jetstore

import (
	"bytes"
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
	store   *Store
	stream  jetstream.Stream
	publish publishFunc // the JetStream client's Publish (rejpublish.go)
}

// OpenRejections creates or binds the rejection stream, and gives it a duplicate window that
// covers every send of one message (rejpublish.go). LEDGER's metadata records when the log was
// created (RejectionsCreatedMetadata): a log missing or created since is ErrRejectionsLost,
// and is not created again, so the rejections it held are not forgotten without an operator's
// word (AcceptLostRejections). A store whose LEDGER records nothing yet (a new store, or one an
// older build made) gets the record now.
func OpenRejections(ctx context.Context, s *Store, replicas int) (*RejectionLog, error) {
	info, err := s.stream.Info(ctx) // fresh: another node may have recorded the log meanwhile
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	recorded, marked := info.Config.Metadata[RejectionsCreatedMetadata]
	st, err := s.js.Stream(ctx, RejectionStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && marked:
		// Wrapping the API's answer keeps it retried while a cluster forms (a stream another
		// node created a moment ago can be unknown to the node asked next), then fatal.
		return nil, fmt.Errorf("%w: stream %s (created %s by LEDGER's record) is gone: %w; %s",
			ErrRejectionsLost, RejectionStream, recorded, err, rejectionsLostAdvice)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = createRejections(ctx, s, replicas)
	}
	if err != nil {
		return nil, fmt.Errorf("rejection stream: %w", err)
	}
	created := st.CachedInfo().Created
	if marked && !sameCreated(recorded, created) {
		return nil, fmt.Errorf("%w: stream %s was created %s, LEDGER records %s (it was deleted and created again); %s",
			ErrRejectionsLost, RejectionStream, created.UTC().Format(time.RFC3339Nano), recorded, rejectionsLostAdvice)
	}
	if !marked {
		if err := recordRejections(ctx, s, created); err != nil {
			return nil, err
		}
	}
	if st, err = ensureDuplicateWindow(ctx, s.js, st, s.timeout); err != nil {
		return nil, err
	}
	return &RejectionLog{store: s, stream: st, publish: s.js.Publish}, nil
}

// BindRejections opens the rejection log to read it, as a maintenance command does: it creates
// nothing and changes nothing (OpenRejections creates a missing log and records it in LEDGER's
// metadata); a missing log is an error wrapping jetstream.ErrStreamNotFound.
func BindRejections(ctx context.Context, s *Store) (*RejectionLog, error) {
	st, err := s.js.Stream(ctx, RejectionStream)
	if err != nil {
		return nil, fmt.Errorf("rejection stream: %w", err)
	}
	return &RejectionLog{store: s, stream: st, publish: s.js.Publish}, nil
}

// RejectionsCreatedMetadata is the LEDGER stream metadata key recording when the rejection log
// was created (the log stream's own creation time, RFC 3339, UTC).
const RejectionsCreatedMetadata = "creditledger_rejections_created"

// ErrRejectionsLost means the rejection log LEDGER records is missing, or was created again
// since: the rejections it held (answers retries must get again) are gone. A ledger refuses to
// start on it rather than decide those retries afresh.
var ErrRejectionsLost = errors.New("the rejection log was lost")

const rejectionsLostAdvice = "with every ledger process stopped, restore " + RejectionStream +
	" from a backup, or accept that retries of the commands it rejected are decided again (`creditledger rejections accept-loss`)"

// AcceptLostRejections is the operator's word that a lost rejection log stays lost: it creates
// the log if it is missing and records the log there is now in LEDGER's metadata, so that the
// ledger starts again (a retry of a command the lost log rejected is then decided afresh). It
// returns whether LEDGER recorded another log before (false: nothing was lost). A log it
// creates has LEDGER's replica count.
func AcceptLostRejections(ctx context.Context, s *Store) (bool, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	recorded, marked := info.Config.Metadata[RejectionsCreatedMetadata]
	st, err := s.js.Stream(ctx, RejectionStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = createRejections(ctx, s, info.Config.Replicas)
	}
	if err != nil {
		return false, fmt.Errorf("rejection stream: %w", err)
	}
	created := st.CachedInfo().Created
	if marked && sameCreated(recorded, created) {
		return false, nil
	}
	return marked, recordRejections(ctx, s, created)
}

// createRejections creates the rejection stream.
func createRejections(ctx context.Context, s *Store, replicas int) (jetstream.Stream, error) {
	return s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:               RejectionStream,
		Description:        "creditledger: rejected commands, replayed to retries of the same command_id",
		Subjects:           []string{RejectionSubjectPrefix + ">"},
		Storage:            jetstream.FileStorage,
		MaxAge:             RejectionRetention,
		AllowAtomicPublish: true,
		AllowDirect:        true,
		Replicas:           max(1, replicas),
		Duplicates:         duplicateWindow(s.timeout),
	})
}

// recordRejections records in LEDGER's metadata the creation time of the rejection log (a
// one-time config update, like recordPartitions).
func recordRejections(ctx context.Context, s *Store, created time.Time) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	cfg := info.Config
	md := map[string]string{}
	for k, v := range cfg.Metadata {
		md[k] = v
	}
	md[RejectionsCreatedMetadata] = created.UTC().Format(time.RFC3339Nano)
	cfg.Metadata = md
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("record the rejection log on stream %s: %w", StreamName, err)
	}
	return nil
}

// sameCreated compares a recorded creation time with a stream's.
func sameCreated(recorded string, created time.Time) bool {
	t, err := time.Parse(time.RFC3339Nano, recorded)
	return err == nil && t.Equal(created)
}

// RejectionSubject is where the ledger writes a round's rejections, all in one message.
const RejectionSubject = RejectionSubjectPrefix + "round"

// maxRejectionMessage bounds one rejection message (and half the server's max_payload, below).
const maxRejectionMessage = 512 << 10

// Visible checks that the stream answers: in a cluster that is still forming, a stream another
// node created a moment ago can be unknown to the node asked next.
func (l *RejectionLog) Visible(ctx context.Context) error {
	if _, err := l.stream.Info(ctx); err != nil {
		return fmt.Errorf("rejection stream info: %w", err)
	}
	return nil
}

// maxRejectionsPerMessage bounds the rejections one message holds, so that an index within a
// message fits the writer's compact form of a rejection (writer/idempotency.go: 12 bits). At
// about 150 bytes a rejection, maxRejectionMessage ends a message first (near 3,500).
const maxRejectionsPerMessage = 4096

// AppendRejections stores rejections and returns where each landed: the position of its message
// and its index in the message's array.
//
// A round's rejections travel as one message (a JSON array), written with a plain publish: an
// atomic batch would make nats-server build and remove a staging file store for every round
// (several fsyncs, measured at about 1.7 ms of CPU per batch), in parallel with the LEDGER
// append it competes with for the disk. Rejections are independent of each other, so a round
// too large for one message is split, and a failure after some pieces is harmless: the writer
// answers none of the round's rejections and forgets them, and a stored piece only replays a
// rejection that was decided. A message whose send gets no answer is sent again under the same
// Nats-Msg-Id (publishCertain), so that its position is known when it was stored after all;
// ledger.ErrUncertain when no send was answered.
func (l *RejectionLog) AppendRejections(ctx context.Context, rs []ledger.Rejection) ([]ledger.RejectionAt, error) {
	docs := make([][]byte, len(rs))
	for i, r := range rs {
		b, err := json.Marshal(rejectionDoc{CommandID: r.CommandID, AccountID: r.AccountID, BodyHash: r.BodyHash,
			Code: r.Err.Code, Message: r.Err.Message, Data: r.Err.Data})
		if err != nil {
			return nil, fmt.Errorf("encode rejection: %w", err)
		}
		docs[i] = b
	}
	at, err := l.publishArrays(ctx, RejectionSubject, docs)
	if err != nil {
		return nil, fmt.Errorf("append rejections: %w", err)
	}
	return at, nil
}

// publishArrays publishes docs (JSON objects) to subject as JSON arrays, as many to a message as
// fit (maxRejectionMessage, maxRejectionsPerMessage), each under a Nats-Msg-Id of its own
// (publishCertain), and returns where each landed.
func (l *RejectionLog) publishArrays(ctx context.Context, subject string, docs [][]byte) ([]ledger.RejectionAt, error) {
	var (
		at    = make([]ledger.RejectionAt, len(docs))
		chunk []byte
		first int // the index in docs of the chunk's first document
	)
	limit := maxRejectionMessage
	if mp := int(l.store.nc.MaxPayload()); mp > 0 && mp/2 < limit {
		limit = mp / 2
	}
	flush := func(end int) error {
		if len(chunk) == 0 {
			return nil
		}
		chunk = append(chunk, ']')
		pos, err := l.publishCertain(ctx, subject, chunk)
		if err != nil {
			return err
		}
		for i := first; i < end; i++ {
			at[i] = ledger.RejectionAt{Position: pos, Index: i - first}
		}
		chunk, first = nil, end
		return nil
	}
	for i, b := range docs {
		if len(chunk) > 0 && (len(chunk)+len(b)+2 > limit || i-first >= maxRejectionsPerMessage) {
			if err := flush(i); err != nil {
				return nil, err
			}
		}
		if len(chunk) == 0 {
			chunk = append(chunk, '[')
		} else {
			chunk = append(chunk, ',')
		}
		chunk = append(chunk, b...)
	}
	if err := flush(len(docs)); err != nil {
		return nil, err
	}
	return at, nil
}

// decodeRejections reads one message of the log: an array of rejections, or a single one (the
// format written before rounds were packed into one message). Anything else yields nothing:
// only the ledger may publish here.
func decodeRejections(data []byte) []rejectionDoc {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) > 0 && data[0] == '[' {
		var docs []rejectionDoc
		if json.Unmarshal(data, &docs) != nil {
			return nil
		}
		return docs
	}
	var d rejectionDoc
	if json.Unmarshal(data, &d) != nil {
		return nil
	}
	return []rejectionDoc{d}
}

// ReadRejections calls fn for every rejection from position from to the stream's head, with
// where it lies, and revoked for every revocation; it returns the head. Messages that are neither
// are skipped: only the ledger may publish here.
func (l *RejectionLog) ReadRejections(ctx context.Context, from uint64, fn func(ledger.Rejection, ledger.RejectionAt), revoked func(ledger.Revocation)) (uint64, error) {
	info, err := LeaderInfo(ctx, l.stream) // a lagging replica's head would end the read early
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
	// Batched direct gets, not a consumer: an ordered consumer placed while the stream's leader
	// had just moved (a node killed) missed its first pull and waited 10 s for it, in a
	// takeover's load and again in its catch-up.
	err = l.store.readRangeDirect(ctx, info.Config.Name, from, head, func(pos uint64, data []byte) {
		for i, e := range decodeEntries(data) {
			switch {
			case e.CommandID != "":
				fn(e.rejection(), ledger.RejectionAt{Position: pos, Index: i})
			case e.Revokes != nil && e.RevokedCommandID != "" && revoked != nil:
				revoked(ledger.Revocation{CommandID: e.RevokedCommandID, At: ledger.RejectionAt{Position: e.Revokes.Position, Index: e.Revokes.Index}})
			}
		}
	})
	if err != nil {
		return 0, fmt.Errorf("read rejections: %w", err)
	}
	return head, nil
}

func (d rejectionDoc) rejection() ledger.Rejection {
	return ledger.Rejection{CommandID: d.CommandID, AccountID: d.AccountID, BodyHash: d.BodyHash,
		Err: &ledger.Error{Code: d.Code, Message: d.Message, Data: d.Data}}
}

// ReadRejectionAt reads back the rejection at: a direct get of its message (any replica may
// answer), then the leader's word when that found nothing (a replica may lag behind an
// acknowledged write; only the leader can say the message is gone). It returns ledger.ErrNoRecord
// when the log no longer holds the message (past RejectionRetention) or the message holds no
// rejection at that index: a writer then decides the command afresh.
func (l *RejectionLog) ReadRejectionAt(ctx context.Context, at ledger.RejectionAt) (ledger.Rejection, error) {
	if at.Position == 0 || at.Index < 0 {
		return ledger.Rejection{}, fmt.Errorf("rejection %d/%d: %w", at.Position, at.Index, ledger.ErrNoRecord)
	}
	var data []byte
	m, err := l.stream.GetMsg(ctx, at.Position)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		var found bool
		data, found, err = leaderAt(ctx, l.store.nc, RejectionStream, at.Position)
		if err != nil {
			return ledger.Rejection{}, fmt.Errorf("read rejection message %d: %w", at.Position, err)
		}
		if !found {
			return ledger.Rejection{}, fmt.Errorf("rejection message %d: %w", at.Position, ledger.ErrNoRecord)
		}
	case err != nil:
		return ledger.Rejection{}, fmt.Errorf("read rejection message %d: %w", at.Position, err)
	default:
		data = m.Data
	}
	docs := decodeRejections(data)
	if at.Index >= len(docs) || docs[at.Index].CommandID == "" {
		return ledger.Rejection{}, fmt.Errorf("rejection %d/%d: %w", at.Position, at.Index, ledger.ErrNoRecord)
	}
	return docs[at.Index].rejection(), nil
}

// RevocationSubject is where the ledger writes revocations of rejections it stored but never
// answered (writer/rejections.go, finishRejections).
const RevocationSubject = RejectionSubjectPrefix + "revoked"

// revocationDoc is one revocation as the stream stores it. It has no command_id field: a reader
// that predates revocations (decodeRejections, which keeps only documents with a command_id)
// skips it, in an array or alone, and never mistakes it for a rejection.
type revocationDoc struct {
	Revokes          *revokedPlace `json:"revokes"`
	RevokedCommandID string        `json:"revoked_command_id"`
}

// revokedPlace is where the revoked rejection lies: its message's position and its index there.
type revokedPlace struct {
	Position uint64 `json:"position"`
	Index    int    `json:"index"`
}

// entryDoc is one document of a message as ReadRejections decodes it: a rejection (command_id
// set) or a revocation (revokes set).
type entryDoc struct {
	rejectionDoc
	revocationDoc
}

// decodeEntries reads one message of the log as decodeRejections does, and the revocations in
// it: the rejections are exactly those an older reader finds, whatever else a document holds.
func decodeEntries(data []byte) []entryDoc {
	rejs := decodeRejections(data)
	out := make([]entryDoc, len(rejs))
	others := false
	for i, r := range rejs {
		out[i].rejectionDoc = r
		others = others || r.CommandID == ""
	}
	if !others {
		return out // the usual message: rejections only, decoded once
	}
	var raw []json.RawMessage
	if d := bytes.TrimLeft(data, " \t\r\n"); len(d) > 0 && d[0] == '[' {
		if json.Unmarshal(d, &raw) != nil {
			return out
		}
	} else {
		raw = []json.RawMessage{d}
	}
	for i := range out {
		if i < len(raw) && out[i].CommandID == "" && json.Unmarshal(raw[i], &out[i].revocationDoc) != nil {
			out[i].revocationDoc = revocationDoc{} // not a revocation either
		}
	}
	return out
}

// RevokeRejections stores revocations of rejections that were stored but never answered, as
// JSON arrays of revocationDoc on RevocationSubject.
func (l *RejectionLog) RevokeRejections(ctx context.Context, rs []ledger.Revocation) error {
	docs := make([][]byte, len(rs))
	for i, r := range rs {
		b, err := json.Marshal(revocationDoc{Revokes: &revokedPlace{Position: r.At.Position, Index: r.At.Index}, RevokedCommandID: r.CommandID})
		if err != nil {
			return fmt.Errorf("encode revocation: %w", err)
		}
		docs[i] = b
	}
	if _, err := l.publishArrays(ctx, RevocationSubject, docs); err != nil {
		return fmt.Errorf("revoke rejections: %w", err)
	}
	return nil
}

// FirstPosition is the stream's first sequence: the messages below it are gone (MaxAge, or
// removed by an operator). It is read from the stream's leader (leaderInfo), the replica
// ReadRejectionAt asks last before it concludes a message is gone.
func (l *RejectionLog) FirstPosition(ctx context.Context) (uint64, error) {
	info, err := LeaderInfo(ctx, l.stream)

	if err != nil {
		return 0, fmt.Errorf("rejection stream info: %w", err)
	}
	return info.State.FirstSeq, nil
}
