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
	"github.com/nats-io/nuid"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// Stream and subject names of the event store; outside readers (auditors) rely on them.
const (
	StreamName    = "LEDGER"
	SubjectPrefix = "ledger.events."
	SubjectAll    = "ledger.events.>"
	// FencePrefix starts the subject of a partition's ownership records (ledger.fence.<p>): a
	// node that takes a partition over writes one, and every later append for the partition
	// expects it to be the last, so the server refuses an append from the owner it replaced.
	FencePrefix = "ledger.fence."
	FenceAll    = "ledger.fence.>"
	// MaxBatch is nats-server's limit on messages in one atomic batch.
	MaxBatch = 1000
)

// JetStream API error codes the store maps to ledger errors.
const (
	errCodeWrongLastSeq      = 10071
	errCodeWrongLastSeqConst = 10164
)

// FenceSubject is the stream subject of partition p's ownership records.
func FenceSubject(p int) string { return FencePrefix + strconv.Itoa(p) }

// Store appends to and reads from the LEDGER stream.
type Store struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	stream     jetstream.Stream
	timeout    time.Duration
	partitions int
	// subjects names the events' subjects (subjects.go).
	subjects Subjects
	// versions maps accounts' versions to the positions the server checks (versions.go).
	versions *versions
}

// DefaultAppendTimeout bounds an append whose answer does not come. A writer has one append in
// flight, so an append sent to a stream leader that has just died (its socket still open while the
// kernel tears the process down, or the stream in an election) holds every command of the node
// until it times out: 10 s made the first commands after a kill -9 wait 10 s whatever the election
// took (docs/OPERATIONS.md, "What a client sees during a takeover"). An append of 1,000 records
// takes about 20 ms on a 2-core machine, so 2 s is two orders of magnitude above a healthy one.
const DefaultAppendTimeout = 2 * time.Second

// Config says how the LEDGER stream is created.
type Config struct {
	// Replicas is the stream's replica count (1 on a single server, 3 in a cluster).
	Replicas int
	// Timeout bounds one append (and one send of a message of rejections, which is sent again
	// up to twice when it gets no answer: rejpublish.go); an append that times out is reported
	// as ledger.ErrUncertain. DefaultAppendTimeout when 0.
	Timeout time.Duration
	// Partitions is the partition count recorded with a stream this call creates
	// (ledger.DefaultPartitions when 0); an existing stream keeps the count it recorded.
	Partitions int
}

// PartitionsMetadata is the LEDGER stream metadata key that records the store's partition count
// (fixed when the store is created: every node places accounts with it, ledger.PartitionOf).
const PartitionsMetadata = "creditledger_partitions"

// StreamConfig is the configuration of a LEDGER stream this build creates: file storage, nothing
// ever deleted, purged or aged out, atomic batches allowed, and partitioned event subjects
// (subjects.go; Open adds the partition count to the metadata).
func StreamConfig(replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:               StreamName,
		Description:        "creditledger event store: immutable, hash-chained account events",
		Subjects:           []string{PartitionedSubjectsAll, FenceAll},
		Metadata:           map[string]string{SubjectsMetadata: SubjectsPartitioned},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		MaxAge:             0,
		Discard:            jetstream.DiscardNew,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		Replicas:           replicas,
	}
}

// CheckStreamConfig explains the first way an existing stream is weaker than the ledger needs.
func CheckStreamConfig(c jetstream.StreamConfig) error {
	fix := "fix it with `nats stream edit " + StreamName + "` or recreate the stream"
	switch {
	case c.Storage != jetstream.FileStorage:
		return fmt.Errorf("stream %s uses memory storage; the ledger needs file storage (%s)", StreamName, fix)
	case !c.DenyDelete:
		return fmt.Errorf("stream %s allows message deletion; set deny_delete (%s)", StreamName, fix)
	case !c.DenyPurge:
		return fmt.Errorf("stream %s allows purge; set deny_purge (%s)", StreamName, fix)
	case c.MaxAge != 0:
		return fmt.Errorf("stream %s has max_age %s; events must never age out, set max_age 0 (%s)", StreamName, c.MaxAge, fix)
	case c.AllowMsgTTL:
		return fmt.Errorf("stream %s allows per-message TTL; disable allow_msg_ttl (%s)", StreamName, fix)
	case c.MaxMsgs > 0 || c.MaxBytes > 0 || c.MaxMsgsPerSubject > 0:
		return fmt.Errorf("stream %s has message or byte limits that would drop events; set them to -1 (%s)", StreamName, fix)
	case c.Retention != jetstream.LimitsPolicy:
		return fmt.Errorf("stream %s has retention %s; the ledger needs limits retention (%s)", StreamName, c.Retention, fix)
	case !c.AllowAtomicPublish:
		return fmt.Errorf("stream %s does not allow atomic batches; set allow_atomic (%s)", StreamName, fix)
	}
	subjects, err := SubjectsOf(c)
	if err != nil {
		return err
	}
	want := SubjectAll
	if subjects.Partitioned {
		want = PartitionedSubjectsAll
	}
	captured := false
	for _, s := range c.Subjects {
		if subjects.Partitioned && capturesAccountSubjects(s) {
			// An older build (which requires ledger.events.>) would open the stream and file an
			// account's events under a second subject, beside the version checks of the first.
			return fmt.Errorf("stream %s files events under %s but captures %s, which takes account subjects (ledger.events.<account_id>) too; capture %s only (%s)",
				StreamName, want, s, want, fix)
		}
		captured = captured || s == want
	}
	if !captured {
		return fmt.Errorf("stream %s does not capture %s (%s)", StreamName, want, fix)
	}
	return nil
}

// Open creates the LEDGER stream if it is missing and refuses one whose settings are weaker.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if nc == nil {
		return nil, errors.New("jetstore: nil connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	stream, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		sc := StreamConfig(cfg.Replicas)
		sc.Metadata[PartitionsMetadata] = strconv.Itoa(orDefault(cfg.Partitions))
		stream, err = js.CreateStream(ctx, sc)
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", StreamName, err)
	}
	if err := CheckStreamConfig(stream.CachedInfo().Config); err != nil {
		return nil, err
	}
	if stream, err = recordFenceSubject(ctx, js, stream); err != nil {
		return nil, err
	}
	if stream, err = recordPartitions(ctx, js, stream); err != nil {
		return nil, err
	}
	subjects, err := SubjectsOf(stream.CachedInfo().Config)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultAppendTimeout
	}
	return &Store{nc: nc, js: js, stream: stream, timeout: timeout, partitions: subjects.Partitions, subjects: subjects, versions: newVersions()}, nil
}

// OpenExisting is Open for the maintenance commands: where the server holds no LEDGER stream
// (--nats-url names another server or account) it refuses, wrapping jetstream.ErrStreamNotFound,
// and creates nothing (Open would create an empty LEDGER, and the command then buckets beside it).
func OpenExisting(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if nc == nil {
		return nil, errors.New("jetstore: nil connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	if _, err := js.Stream(ctx, StreamName); err != nil {
		return nil, fmt.Errorf("no ledger here (stream %s: %w): is --nats-url the ledger's?", StreamName, err)
	}
	return Open(ctx, nc, cfg)
}

func orDefault(n int) int {
	if n <= 0 {
		return ledger.DefaultPartitions
	}
	return n
}

// recordPartitions gives a stream created before partitions existed (no count in its metadata)
// the default count, which is what every node of this build reads it as: a one-time metadata
// update, no migration of events.
func recordPartitions(ctx context.Context, js jetstream.JetStream, st jetstream.Stream) (jetstream.Stream, error) {
	cfg := st.CachedInfo().Config
	if _, ok := cfg.Metadata[PartitionsMetadata]; ok {
		return st, nil
	}
	md := map[string]string{}
	for k, v := range cfg.Metadata {
		md[k] = v
	}
	md[PartitionsMetadata] = strconv.Itoa(ledger.DefaultPartitions)
	cfg.Metadata = md
	updated, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("record the partition count on stream %s: %w", StreamName, err)
	}
	return updated, nil
}

// recordFenceSubject makes a stream created before partition fences existed capture their
// subject too (a one-time config update; no event moves).
func recordFenceSubject(ctx context.Context, js jetstream.JetStream, st jetstream.Stream) (jetstream.Stream, error) {
	cfg := st.CachedInfo().Config
	for _, s := range cfg.Subjects {
		if s == FenceAll {
			return st, nil
		}
	}
	cfg.Subjects = append(append([]string(nil), cfg.Subjects...), FenceAll)
	updated, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("add %s to stream %s: %w", FenceAll, StreamName, err)
	}
	return updated, nil
}

// Partitions reads the partition count a LEDGER stream config records (the default when it
// records none: a store created before partitions existed).
func Partitions(c jetstream.StreamConfig) (int, error) {
	v, ok := c.Metadata[PartitionsMetadata]
	if !ok {
		return ledger.DefaultPartitions, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > ledger.MaxPartitions {
		return 0, fmt.Errorf("stream %s metadata %s=%q: want 1 to %d", StreamName, PartitionsMetadata, v, ledger.MaxPartitions)
	}
	return n, nil
}

// Partitions is the store's partition count.
func (s *Store) Partitions() int { return s.partitions }

// Replicas is the LEDGER stream's replica count as it was opened.
func (s *Store) Replicas() int { return s.stream.CachedInfo().Config.Replicas }

// Subjects names the store's event subjects.
func (s *Store) Subjects() Subjects { return s.subjects }

// JetStream exposes the JetStream context for readers that share the connection.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

type pubAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Count  uint64 `json:"count"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// Append stores recs atomically: one message is a plain publish, more are one atomic batch.
// A record's version check becomes Nats-Expected-Last-Subject-Sequence on its account's subject,
// at the position of the account's message with the expected version (versions.go); its fence
// check, the same header with Nats-Expected-Last-Subject-Sequence-Subject naming its
// partition's fence subject (nats-server checks one expectation per message, on any message
// of a batch, and caches the answer per subject within the batch).
func (s *Store) Append(ctx context.Context, recs []ledger.Record) ([]uint64, error) {
	if err := ledger.CheckAppend(recs); err != nil {
		return nil, err
	}
	seqs, err := s.expectedSeqs(ctx, recs)
	if err != nil {
		return nil, err
	}
	msgs := make([]*nats.Msg, len(recs))
	for i, r := range recs {
		m := nats.NewMsg(s.subjects.Of(r.AccountID))
		m.Data = r.Data
		switch {
		case r.CheckVersion:
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seqs[i], 10))
		case r.CheckFence:
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(r.FenceHead, 10))
			m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, FenceSubject(r.FencePartition))
		}
		msgs[i] = m
	}
	pos, err := s.appendBatch(ctx, msgs)
	if err != nil {
		return nil, err // what is known stays true: the next append or read corrects a stale pair
	}
	for i, r := range recs {
		// A contradiction (a record only the fence guarded, on an account its writer held
		// stale) is not learned: the next append expecting the account finds it.
		_ = s.versions.learn(r.AccountID, versionAt{version: r.Version, seq: pos[i]})
	}
	return pos, nil
}

// appendBatch publishes msgs as one atomic batch (a plain publish for one) and returns their
// positions.
func (s *Store) appendBatch(ctx context.Context, msgs []*nats.Msg) ([]uint64, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	if len(msgs) > MaxBatch {
		return nil, fmt.Errorf("append %d records: at most %d in one atomic batch", len(msgs), MaxBatch)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	batchID := ""
	if len(msgs) > 1 {
		batchID = nuid.Next()
	}
	var last *nats.Msg
	for i, m := range msgs {
		if batchID != "" {
			m.Header.Set("Nats-Batch-Id", batchID)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		}
		if i == len(msgs)-1 {
			if batchID != "" {
				m.Header.Set("Nats-Batch-Commit", "1")
			}
			last = m
			break
		}
		if err := s.nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("append batch message %d: %w", i+1, err)
		}
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("append: %w", err)
		}
		return nil, fmt.Errorf("%w: %v", ledger.ErrUncertain, err)
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, fmt.Errorf("%w: unreadable ack: %v", ledger.ErrUncertain, err)
	}
	if ack.Error != nil {
		if ack.Error.ErrCode == errCodeWrongLastSeq || ack.Error.ErrCode == errCodeWrongLastSeqConst {
			return nil, fmt.Errorf("%w: %s", ledger.ErrConflict, ack.Error.Description)
		}
		return nil, fmt.Errorf("append refused: %s (err_code %d)", ack.Error.Description, ack.Error.ErrCode)
	}
	n := uint64(len(msgs))
	if ack.Seq < n {
		return nil, fmt.Errorf("%w: ack seq %d for %d records", ledger.ErrUncertain, ack.Seq, n)
	}
	pos := make([]uint64, len(msgs))
	for i := range pos {
		pos[i] = ack.Seq - n + 1 + uint64(i)
	}
	return pos, nil
}

// Head is the stream's last position, as its leader has it (leaderInfo).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	info, err := LeaderInfo(ctx, s.stream)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Read replays the stream's events from position from up to its head at the time of the call;
// the head may be an ownership record's position (Fence), which fn is not called for.
func (s *Store) Read(ctx context.Context, from uint64, fn func(ledger.Record) error) (uint64, error) {
	head, err := s.Head(ctx)
	if err != nil {
		return 0, err
	}
	return head, s.readTo(ctx, from, head, fn)
}

// readTo is Read up to head, a position the leader reported.
func (s *Store) readTo(ctx context.Context, from, head uint64, fn func(ledger.Record) error) error {
	if from < 1 {
		from = 1
	}
	if head < from {
		return nil
	}
	if head-from < directReadMax && s.stream.CachedInfo().Config.AllowDirect {
		next, err := s.readFewDirect(ctx, from, head, fn)
		if err == nil || next > head {
			return err
		}
		from = next // read on through a consumer from where the direct gets stopped
	}
	// The ownership records are read too (and skipped): the head may be one, and a consumer
	// filtered on the events alone would never deliver it. No filter at all (the stream holds
	// only events and ownership records): a consumer with two filter subjects is served by the
	// server's multi-filter path, which read a 77,000-record stream 13x slower than this.
	return s.consume(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	}, head, fn)
}

// directReadMax is how many positions Read reads with batched direct gets rather than through
// an ordered consumer: a catch-up after a load, a few records behind. An ordered consumer created
// just after the stream's leader moved can miss its first pull, which costs about 2 s
// (readPullHeartbeat, direct.go): a takeover's catch-up, right after the election that its fence
// waited for, took 2.2 s so (docs/bench/takeover.sh); a long read pays that rarely, and reads
// faster through a consumer.
const directReadMax = 4096

// readFewDirect is Read's short path: the events from from up to head (the leader's), with
// batched direct gets, which ask a lagging replica again (readFilterDirect). It returns the
// position to go on from when the direct gets failed (past head when fn failed: fn's error).
func (s *Store) readFewDirect(ctx context.Context, from, head uint64, fn func(ledger.Record) error) (uint64, error) {
	next := from
	var failed error
	err := s.readFilterDirect(ctx, s.stream.CachedInfo().Config.Name, "", from, head, func(pos uint64, subject string, data []byte) {
		if failed != nil {
			return
		}
		next = pos + 1
		if acct, ok := s.subjects.AccountOf(subject); ok {
			failed = fn(ledger.Record{AccountID: acct, Data: data, Position: pos})
		}
	})
	if failed != nil {
		return head + 1, failed
	}
	return next, err
}

// AccountVersion is the version of the account's last message (read from the stream leader),
// 0 if it has none; an error wrapping events.ErrNoVersion if that message carries none.
func (s *Store) AccountVersion(ctx context.Context, accountID string) (uint64, error) {
	at, err := s.lastVersion(ctx, accountID, nil)
	return at.version, err
}

// ReadAt returns the record at position (a direct get; about a millisecond, so for rare paths).
func (s *Store) ReadAt(ctx context.Context, position uint64) (ledger.Record, error) {
	m, err := s.stream.GetMsg(ctx, position)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ledger.Record{}, fmt.Errorf("position %d: %w", position, ledger.ErrNoRecord)
	}
	if err != nil {
		return ledger.Record{}, fmt.Errorf("read position %d: %w", position, err)
	}
	acct, ok := s.subjects.AccountOf(m.Subject)
	if !ok {
		return ledger.Record{}, fmt.Errorf("position %d holds %s, not an event: %w", position, m.Subject, ledger.ErrNoRecord)
	}
	return ledger.Record{AccountID: acct, Data: m.Data, Position: m.Sequence}, nil
}

// ReadAccount returns one account's records in order, from its first whose version is at least
// from, each with the version its envelope carries (0 where none can be read). The stream holds
// no index by version: the account's messages are read from its first and the earlier ones
// passed over. The account's last version and position are learned on the way (versions.go).
func (s *Store) ReadAccount(ctx context.Context, accountID string, from uint64) ([]ledger.Record, error) {
	// The last message as the stream leader has it: a direct get (GetLastMsgForSubject on a
	// stream with allow_direct) may be answered by a replica that has not applied the last
	// acknowledged append yet, and the read would end before it.
	last, _, err := leaderLast(ctx, s.nc, StreamName, s.subjects.Of(accountID))
	if err != nil {
		return nil, fmt.Errorf("last message of %s: %w", accountID, err)
	}
	if last == 0 {
		return nil, nil
	}
	var out []ledger.Record
	started := from <= 1
	err = s.consume(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.subjects.Of(accountID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}, last, func(r ledger.Record) error {
		r.Version, _ = events.VersionOf(r.Data) // 0: none to read; the caller finds the break
		if started = started || r.Version >= from; started {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n := len(out); n > 0 && out[n-1].Version > 0 {
		// A contradiction is not learned; the caller, reading every record, finds the break.
		_ = s.versions.learn(accountID, versionAt{version: out[n-1].Version, seq: out[n-1].Position})
	}
	return out, nil
}

// consume runs an ordered consumer until it has delivered the message at position until.
func (s *Store) consume(ctx context.Context, cfg jetstream.OrderedConsumerConfig, until uint64, fn func(ledger.Record) error) error {
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	return s.consumeWith(ctx, cons, until, fn)
}
