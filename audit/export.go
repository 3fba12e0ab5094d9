package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/creditledger/creditledger/events"
)

// Export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// ErrFormat is returned for an export format other than jsonl or csv.
var ErrFormat = errors.New("unknown export format")

// CSVHeader is the first row of a CSV export: where the message is, every envelope field (the
// payload as its stored JSON), and data_base64, which holds the stored bytes whenever the
// envelope fields alone would not reproduce them exactly (a malformed or hand-edited message).
var CSVHeader = []string{
	"position", "subject", "stored_at", "event_id", "type", "schema_version", "account_id", "version",
	"occurred_at", "command_id", "command_hash", "correlation_id", "payload", "prev_hash", "hash_rule", "hash", "data_base64",
}

// csvHeaderV1 is the header of exports written before hash_rule existed; ReadCSV still reads
// them (their events all have the legacy rule).
var csvHeaderV1 = []string{
	"position", "subject", "stored_at", "event_id", "type", "schema_version", "account_id", "version",
	"occurred_at", "command_id", "command_hash", "correlation_id", "payload", "prev_hash", "hash", "data_base64",
}

// CSV column indexes past prev_hash.
const (
	colHashRule = 14
	colHash     = 15
	colData     = 16
)

// Export writes the selected messages to w as JSON lines or CSV and returns how many it wrote.
func Export(ctx context.Context, src *Source, f Filter, format string, w io.Writer) (int, error) {
	switch format {
	case FormatJSONL:
		bw := bufio.NewWriter(w)
		n, err := Replay(ctx, src, f, bw)
		if ferr := bw.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write export: %w", ferr)
		}
		return n, err
	case FormatCSV:
		return exportCSV(ctx, src, f, w)
	default:
		return 0, fmt.Errorf("%w %q: use jsonl or csv", ErrFormat, format)
	}
}

func exportCSV(ctx context.Context, src *Source, f Filter, w io.Writer) (int, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return 0, fmt.Errorf("write export: %w", err)
	}
	n := 0
	_, err := src.Scan(ctx, f, func(m Message) error {
		if err := cw.Write(csvRow(m)); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
		n++
		return nil
	})
	cw.Flush()
	if err == nil && cw.Error() != nil {
		err = fmt.Errorf("write export: %w", cw.Error())
	}
	return n, err
}

// csvRow renders one message; its envelope fields are left empty when it is not an envelope
// (a partition ownership record, on a fence subject, is none: its bytes are in data_base64).
func csvRow(m Message) []string {
	row := make([]string, len(CSVHeader))
	row[0] = strconv.FormatUint(m.Position, 10)
	row[1] = m.Subject
	row[2] = m.StoredAt.UTC().Format(time.RFC3339Nano)
	var e events.Envelope
	if err := json.Unmarshal(m.Data, &e); err != nil || m.IsFence() {
		row[colData] = base64.StdEncoding.EncodeToString(m.Data)
		return row
	}
	at, _ := e.OccurredAt.MarshalText()
	copy(row[3:], []string{
		e.EventID, e.Type, strconv.Itoa(e.SchemaVersion), e.AccountID, strconv.FormatUint(e.Version, 10),
		string(at), e.CommandID, e.CommandHash, e.CorrelationID, string(e.Payload), e.PrevHash, e.HashRule, e.Hash,
	})
	if again, err := events.Encode(&e); err != nil || !bytes.Equal(again, m.Data) {
		row[colData] = base64.StdEncoding.EncodeToString(m.Data)
	}
	return row
}

// ReadCSV reads a CSV export back into the messages it holds, with their stored bytes.
func ReadCSV(r io.Reader) ([]Message, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("csv header: %w", err)
	}
	want := CSVHeader
	if len(header) == len(csvHeaderV1) {
		want = csvHeaderV1
	}
	if len(header) != len(want) {
		return nil, fmt.Errorf("csv header has %d columns, want %d", len(header), len(CSVHeader))
	}
	for i, h := range want {
		if header[i] != h {
			return nil, fmt.Errorf("csv header column %d is %q, want %q", i+1, header[i], h)
		}
	}
	cr.FieldsPerRecord = len(want)
	var out []Message
	for line := 2; ; line++ {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		if len(want) == len(csvHeaderV1) { // no hash_rule column: legacy events
			row = append(append(row[:colHashRule:colHashRule], ""), row[colHashRule:]...)
		}
		m, err := messageFromRow(row)
		if err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		out = append(out, m)
	}
}

func messageFromRow(row []string) (Message, error) {
	var m Message
	var err error
	if m.Position, err = strconv.ParseUint(row[0], 10, 64); err != nil {
		return m, fmt.Errorf("position: %w", err)
	}
	m.Subject = row[1]
	if m.StoredAt, err = time.Parse(time.RFC3339Nano, row[2]); err != nil {
		return m, fmt.Errorf("stored_at: %w", err)
	}
	if row[colData] != "" {
		m.Data, err = base64.StdEncoding.DecodeString(row[colData])
		return m, err
	}
	e := events.Envelope{EventID: row[3], Type: row[4], AccountID: row[6], CommandID: row[9],
		CommandHash: row[10], CorrelationID: row[11], Payload: json.RawMessage(row[12]), PrevHash: row[13],
		HashRule: row[colHashRule], Hash: row[colHash]}
	if e.SchemaVersion, err = strconv.Atoi(row[5]); err != nil {
		return m, fmt.Errorf("schema_version: %w", err)
	}
	if e.Version, err = strconv.ParseUint(row[7], 10, 64); err != nil {
		return m, fmt.Errorf("version: %w", err)
	}
	if err = e.OccurredAt.UnmarshalText([]byte(row[8])); err != nil {
		return m, fmt.Errorf("occurred_at: %w", err)
	}
	m.Data, err = events.Encode(&e)
	return m, err
}
