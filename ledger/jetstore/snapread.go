package jetstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading a snapshot without the bucket's leader. nats.go reads an object's chunks through an
// ordered push consumer, which the bucket's stream leader must create: while that stream elects
// a leader (its server died, often with LEDGER's leader, since nats-server tends to place a
// cluster's streams alike), a takeover's load waited for the election, and a consumer request
// sent during it waited out its own timeout on top (5.5 s measured, docs/bench/takeover.sh).
// The object's metadata is read with a direct get already (nats.go, allow_direct); its chunks
// are read here with batched direct gets, which any replica answers, and checked against the
// metadata's size and SHA-256 digest as nats.go checks them.

// snapBatchBytes bounds one batch of chunks (128 KiB each): without it the server sends up to
// its max_pending (64 MiB) at once to the ledger's connection, which other traffic to that
// connection could push past the limit at which the server closes it as a slow consumer.
const snapBatchBytes = 8 << 20

// errNotDirect means the object cannot be read with direct gets (a link, a bucket without
// allow_direct, a size over snapDirectMax); Load then reads it through nats.go.
var errNotDirect = errors.New("not readable with direct gets")

// snapDirectMax is the largest object read with direct gets, which set aside the metadata's size
// before any chunk has come: that size is the bucket's word, checked only against what arrives (a
// bucket restored or edited wrongly may claim exabytes, which must cost a fallback to nats.go's
// read, not the process). Snapshots measure tens of MB.
const snapDirectMax = 1 << 30

// loadDirect reads the named object's bytes with direct gets; nil, nil when there is none.
func (s *Snapshots) loadDirect(ctx context.Context, name string) ([]byte, error) {
	if s.nc == nil || !s.direct {
		return nil, errNotDirect
	}
	info, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if info.NUID == "" || info.Opts != nil && info.Opts.Link != nil || info.Size > snapDirectMax {
		return nil, errNotDirect
	}
	if info.Size == 0 {
		return []byte{}, nil
	}
	data, err := s.readChunks(ctx, fmt.Sprintf("$O.%s.C.%s", SnapshotBucket, info.NUID), int(info.Chunks), info.Size)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if got := "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:]); got != info.Digest {
		return nil, fmt.Errorf("snapshot %s: digest %s, its metadata says %s", name, got, info.Digest)
	}
	return data, nil
}

// readChunks reads the chunks messages on subject (chunks of them, size bytes in all), in order.
func (s *Snapshots) readChunks(ctx context.Context, subject string, chunks int, size uint64) ([]byte, error) {
	inbox := s.nc.NewInbox()
	answers := make(chan *nats.Msg, directBatch+1)
	sub, err := s.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	var buf bytes.Buffer
	buf.Grow(int(size))
	got, next := 0, uint64(1)
	for empty := 0; got < chunks; {
		req, _ := json.Marshal(directRequest{Seq: next, NextFor: subject, Batch: min(chunks-got, directBatch), MaxBytes: snapBatchBytes})
		if err := s.nc.PublishRequest("$JS.API.DIRECT.GET.OBJ_"+SnapshotBucket, inbox, req); err != nil {
			return nil, err
		}
		before := got
	batch:
		for {
			msg, err := nextDirect(ctx, answers) // fenceheads.go
			if err != nil {
				return nil, err
			}
			switch status := msg.Header.Get("Status"); status {
			case "":
			case statusEOB, statusNoResults: // the end of the batch; nothing more on a lagging replica
				break batch
			default:
				return nil, fmt.Errorf("direct get answered %s %s", status, msg.Header.Get("Description"))
			}
			if msg.Header.Get(jetstream.SubjectHeader) != subject {
				continue // another stream's message (a mirror that serves this stream's direct gets)
			}
			seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil || seq < next {
				return nil, fmt.Errorf("a direct get answer out of order (sequence %q, %d asked)", msg.Header.Get(jetstream.SequenceHeader), next)
			}
			buf.Write(msg.Data)
			got, next = got+1, seq+1
			if got == chunks {
				break batch
			}
		}
		if got > before {
			empty = 0
			continue
		}
		if empty++; empty > directRetries {
			return nil, fmt.Errorf("no replica answered chunk %d of %d", got+1, chunks)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
	if uint64(buf.Len()) != size {
		return nil, fmt.Errorf("%d bytes in %d chunks, the metadata says %d", buf.Len(), chunks, size)
	}
	return buf.Bytes(), nil
}
