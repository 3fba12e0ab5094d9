package server

import (
	"context"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/writer"
)

// rejectionLog adapts the JetStream rejection stream to the writer's RejectionLog.
type rejectionLog struct {
	log *jetstore.RejectionLog
}

func (r rejectionLog) AppendRejections(ctx context.Context, rs []writer.Rejection) (uint64, error) {
	out := make([]jetstore.Rejection, len(rs))
	for i, x := range rs {
		out[i] = jetstore.Rejection{CommandID: x.CommandID, AccountID: x.AccountID, BodyHash: x.BodyHash,
			Code: x.Err.Code, Message: x.Err.Message, Data: x.Err.Data}
	}
	return r.log.Append(ctx, out)
}

func (r rejectionLog) ReadRejections(ctx context.Context, from uint64, fn func(writer.Rejection)) (uint64, error) {
	return r.log.Read(ctx, from, func(x jetstore.Rejection) {
		fn(writer.Rejection{CommandID: x.CommandID, AccountID: x.AccountID, BodyHash: x.BodyHash,
			Err: &ledger.Error{Code: x.Code, Message: x.Message, Data: x.Data}})
	})
}
