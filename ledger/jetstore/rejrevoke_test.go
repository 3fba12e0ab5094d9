package jetstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// olderDoc and olderDecode are the rejection log's reader as builds before revocations have it
// (decodeRejections and the command_id filter of ReadRejections, copied as they were): a node
// of such a build may read the stream a newer node writes revocations to.
type olderDoc struct {
	CommandID string            `json:"command_id"`
	AccountID string            `json:"account_id"`
	BodyHash  string            `json:"body_hash"`
	Code      ledger.Code       `json:"code"`
	Message   string            `json:"message"`
	Data      map[string]string `json:"data,omitempty"`
}

func olderDecode(data []byte) []olderDoc {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) > 0 && data[0] == '[' {
		var docs []olderDoc
		if json.Unmarshal(data, &docs) != nil {
			return nil
		}
		return docs
	}
	var d olderDoc
	if json.Unmarshal(data, &d) != nil {
		return nil
	}
	return []olderDoc{d}
}

// olderRejections is what an older build remembers of a message: its documents with a command_id.
func olderRejections(data []byte) []string {
	var ids []string
	for _, d := range olderDecode(data) {
		if d.CommandID != "" {
			ids = append(ids, d.CommandID)
		}
	}
	return ids
}

// TestRevocationsRoundTrip: a revocation written after the rejections it names comes back to
// ReadRejections' revoked callback, in log order, and never as a rejection; an older build's
// reader finds no rejection in its message (it carries no command_id); ReadRejectionAt finds
// nothing at its place. FirstPosition follows the stream's first sequence as an operator removes
// messages.
func TestRevocationsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, js := openRejectionLog(t)

	rej := func(id string) ledger.Rejection {
		return ledger.Rejection{CommandID: id, AccountID: "acme", BodyHash: "h", Err: &ledger.Error{Code: ledger.CodeInsufficientCredits, Message: "m"}}
	}
	at, err := log.AppendRejections(ctx, []ledger.Rejection{rej("c1"), rej("c2")})
	require.NoError(t, err)
	revs := []ledger.Revocation{{CommandID: "c1", At: at[0]}, {CommandID: "c2", At: at[1]}}
	require.NoError(t, log.RevokeRejections(ctx, revs))
	later, err := log.AppendRejections(ctx, []ledger.Rejection{rej("c1")})
	require.NoError(t, err)

	var order []string
	head, err := log.ReadRejections(ctx, 1, func(r ledger.Rejection, a ledger.RejectionAt) {
		order = append(order, "rejection "+r.CommandID)
	}, func(rv ledger.Revocation) {
		order = append(order, "revocation "+rv.CommandID)
		assert.Contains(t, revs, rv)
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), head)
	assert.Equal(t, []string{"rejection c1", "rejection c2", "revocation c1", "revocation c2", "rejection c1"}, order)

	st, err := js.Stream(ctx, jetstore.RejectionStream)
	require.NoError(t, err)
	m, err := st.GetMsg(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, jetstore.RevocationSubject, m.Subject)
	assert.Empty(t, olderRejections(m.Data), "an older build reads no rejection in a revocation: %s", m.Data)
	first, err := st.GetMsg(ctx, at[0].Position)
	require.NoError(t, err)
	assert.Equal(t, []string{"c1", "c2"}, olderRejections(first.Data), "the copy reads rejections as it did")
	_, err = log.ReadRejectionAt(ctx, ledger.RejectionAt{Position: 2, Index: 0})
	assert.ErrorIs(t, err, ledger.ErrNoRecord)
	got, err := log.ReadRejectionAt(ctx, later[0])
	require.NoError(t, err)
	assert.Equal(t, "c1", got.CommandID)

	pos, err := log.FirstPosition(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), pos)
	require.NoError(t, st.Purge(ctx, jetstream.WithPurgeSequence(3))) // as an operator would: below 3
	pos, err = log.FirstPosition(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), pos)
	require.NoError(t, st.Purge(ctx))
	pos, err = log.FirstPosition(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), pos, "an empty log: the head plus one")
}
