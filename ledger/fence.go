package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// FenceFormat names the ownership record's format: auditors and readers recognise the record
// by it (docs/FORMAT.md).
const FenceFormat = "creditledger-fence/1"

// ErrMalformedFence means a message on a fence subject is not a valid ownership record.
var ErrMalformedFence = errors.New("malformed partition ownership record")

// Fence is a partition's ownership record, stored in the event stream on the partition's fence
// subject: node Owner took partition Partition over at Time while holding its lease at
// LeaseRevision. Every later append for the partition expects this record to be the last one
// on that subject, so the server itself refuses an append from the owner it replaced.
type Fence struct {
	Format        string    `json:"format"`
	LeaseRevision uint64    `json:"lease_revision"`
	Owner         string    `json:"owner"`
	Partition     int       `json:"partition"`
	Partitions    int       `json:"partitions"`
	Time          time.Time `json:"time"`
}

// Validate says what is wrong with f, if anything.
func (f Fence) Validate() error {
	switch {
	case f.Format != FenceFormat:
		return fmt.Errorf("%w: format %q, want %q", ErrMalformedFence, f.Format, FenceFormat)
	case f.Partitions < 1 || f.Partitions > MaxPartitions:
		return fmt.Errorf("%w: partitions %d outside [1,%d]", ErrMalformedFence, f.Partitions, MaxPartitions)
	case f.Partition < 0 || f.Partition >= f.Partitions:
		return fmt.Errorf("%w: partition %d outside [0,%d)", ErrMalformedFence, f.Partition, f.Partitions)
	case !ValidID(f.Owner):
		return fmt.Errorf("%w: owner %q is not a valid id", ErrMalformedFence, f.Owner)
	case f.Time.IsZero() || f.Time.Location() != time.UTC:
		return fmt.Errorf("%w: time must be a UTC instant", ErrMalformedFence)
	}
	return nil
}

// EncodeFence is the stored form of f: its RFC 8785 (JCS) canonical JSON.
func EncodeFence(f Fence) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode fence: %w", err)
	}
	v := jsontext.Value(raw)
	if err := v.Canonicalize(); err != nil {
		return nil, fmt.Errorf("encode fence: %w", err)
	}
	return v, nil
}

// DecodeFence reads a stored ownership record strictly: every member known and present, valid,
// and in its canonical form (so one record has exactly one stored form).
func DecodeFence(data []byte) (Fence, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f Fence
	if err := dec.Decode(&f); err != nil {
		return Fence{}, fmt.Errorf("%w: %v", ErrMalformedFence, err)
	}
	if dec.More() {
		return Fence{}, fmt.Errorf("%w: data after the record", ErrMalformedFence)
	}
	again, err := EncodeFence(f)
	if err != nil {
		return Fence{}, err
	}
	if !bytes.Equal(again, data) {
		return Fence{}, fmt.Errorf("%w: not in its RFC 8785 canonical form", ErrMalformedFence)
	}
	return f, nil
}
