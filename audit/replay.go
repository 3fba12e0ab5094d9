package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// Message is one stored message of the LEDGER stream exactly as JetStream holds it.
type Message struct {
	// Position is the JetStream stream sequence.
	Position uint64
	// Subject is the event's subject (ledger.events.<p>.<account_id> in a store created by this
	// build, ledger.events.<account_id> in one created before: jetstore.Subjects), or
	// ledger.fence.<p> for a partition ownership record.
	Subject string
	// Data is the stored bytes: the JSON envelope (or ownership record) as the writer encoded it,
	// or as a forger left it.
	Data []byte
	// StoredAt is when JetStream stored the message; it is not covered by any hash.
	StoredAt time.Time
	// Header is the message's NATS header, if any; it is not covered by any hash.
	Header nats.Header
}

// AccountID is the account the message's subject names, in either scheme ("" if it is no event
// subject). It does not check the scheme or the partition against the store's (a Chain with
// SetSubjects does: a message there is foreign though it names an account).
func (m Message) AccountID() string {
	e, ok := jetstore.ParseEventSubject(m.Subject)
	if !ok {
		return ""
	}
	return e.AccountID
}

// Filter selects messages for replay and export. Zero values select everything.
type Filter struct {
	// AccountID keeps one account's events (read with a subject filter, not client-side).
	AccountID string
	// FromPosition skips messages before this stream position.
	FromPosition uint64
	// ToPosition, when not zero, stops after this stream position.
	ToPosition uint64
	// Since keeps events whose occurred_at is at or after it.
	Since time.Time
	// Until keeps events whose occurred_at is before it.
	Until time.Time
}

// keep applies the time bounds to an event's occurred_at (an ownership record's time). A message
// whose time cannot be read is always kept: an auditor wants to see anomalies, not have them
// filtered away.
func (f Filter) keep(m Message) bool {
	if f.Since.IsZero() && f.Until.IsZero() {
		return true
	}
	var head struct {
		OccurredAt time.Time `json:"occurred_at"`
		Time       time.Time `json:"time"`
	}
	if err := json.Unmarshal(m.Data, &head); err != nil {
		return true
	}
	at := head.OccurredAt
	if m.IsFence() {
		at = head.Time
	}
	if at.IsZero() {
		return true
	}
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	return f.Until.IsZero() || at.Before(f.Until)
}

// Source reads the LEDGER stream over the auditor's own NATS connection: stream info and
// (batched) direct gets straight from JetStream, never through the ledger service, and no
// consumers (direct.go).
type Source struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	// Progress, when set, is called after every message a scan reads with its position and the
	// scan's last position.
	Progress func(position, last uint64)
}

// NewSource opens the LEDGER stream on nc.
func NewSource(ctx context.Context, nc *nats.Conn) (*Source, error) {
	if nc == nil {
		return nil, errors.New("audit: nil connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	stream, err := openStream(ctx, js, jetstore.StreamName)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", jetstore.StreamName, err)
	}
	return &Source{js: js, stream: stream}, nil
}

// Info is the LEDGER stream's current configuration and state.
func (s *Source) Info(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := streamInfo(ctx, s.stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", jetstore.StreamName, err)
	}
	return info, nil
}

// Subjects are the stream's event subjects (its scheme and partition count), as the stream's
// config read when the source was opened records them: they are fixed when the stream is created.
func (s *Source) Subjects() (jetstore.Subjects, error) {
	return jetstore.SubjectsOf(s.stream.CachedInfo().Config)
}

// Head is the stream's last position now.
func (s *Source) Head(ctx context.Context) (uint64, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// bounds returns the first and last positions a scan must read (first > last: nothing to read).
// The last is fixed when the scan starts, so a scan of a busy ledger ends.
func (s *Source) bounds(ctx context.Context, subject string, from uint64) (first, last uint64, err error) {
	if subject == allSubjects {
		last, err = s.Head(ctx)
	} else {
		var m *jetstream.RawStreamMsg
		m, err = s.stream.GetLastMsgForSubject(ctx, subject)
		if err == nil {
			last = m.Sequence
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("last message of %s: %w", subject, err)
	}
	if from > last {
		return 1, 0, nil
	}
	m, err := s.stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("first message of %s from %d: %w", subject, from, err)
	}
	return m.Sequence, last, nil
}

// Scan calls fn for every message the filter selects, in stream order, up to the stream's (or
// the account's) last position when the scan starts, and returns that position. Without an
// account it reads every message of the stream, events and partition ownership records alike,
// so the positions it passes are contiguous; with one, that account's events only.
func (s *Source) Scan(ctx context.Context, f Filter, fn func(Message) error) (uint64, error) {
	subject := allSubjects
	if f.AccountID != "" {
		if !ledger.ValidID(f.AccountID) {
			return 0, fmt.Errorf("account id %q: must be 1-64 characters of A-Za-z0-9_-", f.AccountID)
		}
		subjects, err := s.Subjects()
		if err != nil {
			return 0, err
		}
		subject = subjects.Of(f.AccountID)
	}
	first, last, err := s.bounds(ctx, subject, max(f.FromPosition, 1))
	if f.ToPosition > 0 && f.ToPosition < last {
		last = f.ToPosition
	}
	if err != nil || first > last {
		return last, err
	}
	err = consumeRange(ctx, s.js.Conn(), s.stream, subject, first, last, func(m Message) error {
		if !f.keep(m) {
			return nil
		}
		return fn(m)
	}, s.Progress)
	return last, err
}

// strictUnmarshal decodes one JSON value, rejecting unknown fields and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// Line is one line of a replay or JSON-lines export: where the message is and its stored bytes,
// verbatim. Event holds the bytes when they are one line of valid JSON (always, for messages the
// ledger wrote); anything else is kept exactly in DataBase64.
type Line struct {
	Position   uint64          `json:"position"`
	Subject    string          `json:"subject"`
	StoredAt   time.Time       `json:"stored_at"`
	Event      json.RawMessage `json:"event,omitempty"`
	DataBase64 string          `json:"data_base64,omitempty"`
}

// AppendLine renders m as one JSON line (with the newline). The event bytes are copied
// verbatim, not re-encoded, so the line holds exactly what is stored.
func AppendLine(buf []byte, m Message) []byte {
	buf = append(buf, `{"position":`...)
	buf = strconv.AppendUint(buf, m.Position, 10)
	buf = append(buf, `,"subject":`...)
	buf = strconv.AppendQuote(buf, m.Subject)
	buf = append(buf, `,"stored_at":"`...)
	buf = m.StoredAt.UTC().AppendFormat(buf, time.RFC3339Nano)
	if jsontext.Value(m.Data).IsValid() && !bytes.ContainsAny(m.Data, "\r\n") {
		buf = append(buf, `","event":`...)
		buf = append(buf, m.Data...)
	} else {
		buf = append(buf, `","data_base64":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, m.Data)
		buf = append(buf, '"')
	}
	return append(buf, "}\n"...)
}

// ParseLine reads a line written by AppendLine back into the message.
func ParseLine(line []byte) (Message, error) {
	var l Line
	if err := json.Unmarshal(line, &l); err != nil {
		return Message{}, fmt.Errorf("replay line: %w", err)
	}
	m := Message{Position: l.Position, Subject: l.Subject, StoredAt: l.StoredAt}
	switch {
	case l.Event != nil:
		m.Data = []byte(l.Event)
	case l.DataBase64 != "":
		b, err := base64.StdEncoding.DecodeString(l.DataBase64)
		if err != nil {
			return Message{}, fmt.Errorf("replay line at position %d: data_base64: %w", l.Position, err)
		}
		m.Data = b
	}
	return m, nil
}

// ReplayStored writes each selected message's stored bytes verbatim, one per line, in stream
// order: the events exactly as stored. A message that cannot stand as one JSON line (not valid
// JSON, or containing a line break — never true of what the ledger writes) is written in the
// positioned form of AppendLine instead, and counted in the second result.
func ReplayStored(ctx context.Context, src *Source, f Filter, w io.Writer) (int, int, error) {
	n, odd := 0, 0
	var buf []byte
	_, err := src.Scan(ctx, f, func(m Message) error {
		if jsontext.Value(m.Data).IsValid() && !bytes.ContainsAny(m.Data, "\r\n") {
			buf = append(append(buf[:0], m.Data...), '\n')
		} else {
			buf = AppendLine(buf[:0], m)
			odd++
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write replay: %w", err)
		}
		n++
		return nil
	})
	return n, odd, err
}

// Replay writes the selected messages as JSON lines, in stream order, exactly as stored, and
// returns how many it wrote.
func Replay(ctx context.Context, src *Source, f Filter, w io.Writer) (int, error) {
	n := 0
	var buf []byte
	_, err := src.Scan(ctx, f, func(m Message) error {
		buf = AppendLine(buf[:0], m)
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write replay: %w", err)
		}
		n++
		return nil
	})
	return n, err
}
