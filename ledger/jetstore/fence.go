package jetstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/ledger"
)

// Fence stores the ownership records of claims on their partitions' fence subjects: one atomic
// batch per MaxBatch records, each record checked (Nats-Expected-Last-Subject-Sequence on its
// own subject) against its claim's Expect. A refused check refuses its whole batch
// (ledger.ErrConflict).
func (s *Store) Fence(ctx context.Context, claims []ledger.FenceClaim) ([]uint64, error) {
	out := make([]uint64, 0, len(claims))
	for start := 0; start < len(claims); start += MaxBatch {
		chunk := claims[start:min(start+MaxBatch, len(claims))]
		msgs := make([]*nats.Msg, len(chunk))
		for i, c := range chunk {
			data, err := ledger.EncodeFence(c.Fence)
			if err != nil {
				return out, err
			}
			m := nats.NewMsg(FenceSubject(c.Fence.Partition))
			m.Data = data
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(c.Expect, 10))
			msgs[i] = m
		}
		pos, err := s.appendBatch(ctx, msgs)
		if err != nil {
			return out, fmt.Errorf("fence %d partitions: %w", len(chunk), err)
		}
		out = append(out, pos...)
	}
	return out, nil
}
