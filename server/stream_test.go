package server_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// storedEvent is one message of the LEDGER stream.
type storedEvent struct {
	position uint64
	subject  string
	raw      []byte
	env      events.Envelope
}

// readStream reads every event of the LEDGER stream straight from JetStream (the partitions'
// ownership records, which share its positions, are skipped).
func readStream(t *testing.T, l *testledger.Ledger) []storedEvent {
	t.Helper()
	head := streamHead(t, l)
	if head == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	s, err := js.Stream(ctx, "LEDGER")
	require.NoError(t, err)
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	var out []storedEvent
	for read := uint64(0); read < head; {
		batch, err := cons.Fetch(int(min(head-read, 1000)), jetstream.FetchMaxWait(requestTimeout))
		require.NoError(t, err)
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			require.NoError(t, err)
			read = md.Sequence.Stream
			if strings.HasPrefix(msg.Subject(), jetstore.FencePrefix) {
				continue // a partition's ownership record (written at every start): not an event
			}
			var env events.Envelope
			require.NoError(t, json.Unmarshal(msg.Data(), &env), "position %d", md.Sequence.Stream)
			out = append(out, storedEvent{position: md.Sequence.Stream, subject: msg.Subject(), raw: msg.Data(), env: env})
		}
		require.NoError(t, batch.Error())
	}
	return out
}

// lastEvent is the position of the stream's last event (0: none). The stream's head can be a
// partition's ownership record: a node writes them at every start.
func lastEvent(t *testing.T, l *testledger.Ledger) uint64 {
	t.Helper()
	evs := readStream(t, l)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].position
}

// verifyStream checks every stored envelope: the contract's fields, a UUIDv7 id, the account's
// subject, versions 1, 2, 3 ... per account and the per-account hash chain from an all-zero hash.
func verifyStream(t *testing.T, l *testledger.Ledger) []storedEvent {
	t.Helper()
	stored := readStream(t, l)
	versions := map[string]uint64{}
	prev := map[string]string{}
	for i, e := range stored {
		if i > 0 {
			require.Greater(t, e.position, stored[i-1].position, "positions grow")
		}
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(e.raw, &obj))
		for _, k := range []string{"event_id", "type", "schema_version", "account_id", "version", "occurred_at",
			"command_id", "correlation_id", "payload", "prev_hash", "hash"} {
			assert.Contains(t, obj, k, "position %d", e.position)
		}
		id, err := uuid.Parse(e.env.EventID)
		if assert.NoError(t, err, "position %d event_id", e.position) {
			assert.Equal(t, uuid.Version(7), id.Version(), "position %d event_id is UUIDv7", e.position)
		}
		assert.Equal(t, jetstore.DefaultSubjects.Of(e.env.AccountID), e.subject, "position %d subject", e.position)
		versions[e.env.AccountID]++
		assert.Equal(t, versions[e.env.AccountID], e.env.Version, "position %d version", e.position)
		want, ok := prev[e.env.AccountID]
		if !ok {
			want = strings.Repeat("0", 64)
		}
		assert.Equal(t, want, e.env.PrevHash, "position %d prev_hash chains", e.position)
		assert.Len(t, e.env.Hash, 64)
		assert.True(t, e.env.VerifyHash(), "position %d hash matches content", e.position)
		prev[e.env.AccountID] = e.env.Hash
		_, err = events.Decode(e.raw)
		assert.NoError(t, err, "position %d decodes", e.position)
	}
	return stored
}

// TestStreamHoldsTheRepliedEvents: every reply names exactly the stored events of its command,
// with the command's id and correlation id, and the stream is a valid hash chain.
func TestStreamHoldsTheRepliedEvents(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	var replies []accepted
	for _, id := range []string{"st1", "st2"} {
		a := newAccount(t, l, id)
		replies = append(replies, a.activeLicense(id+"-L", "100"))
		replies = append(replies, a.ok("allocate_credits", m{"feature": "container_security", "credits": "40", "correlation_id": "trace-" + id}))
		a.activePayg(id + "-P")
		replies = append(replies, a.ok("switch_billing_model", m{"feature": "container_security", "to": "payg"}))
		replies = append(replies, a.ok("purchase_license", m{"license_id": id + "-OLD", "source": "sales", "credits": "1",
			"contract_start": "2023-03-01T00:00:00Z"}))
	}
	stored := verifyStream(t, l)
	byPos := map[uint64]storedEvent{}
	for _, e := range stored {
		byPos[e.position] = e
	}
	for _, r := range replies {
		var cmdIDs []string
		for _, ref := range r.Events {
			e, ok := byPos[ref.Position]
			require.True(t, ok, "position %d stored", ref.Position)
			assert.Equal(t, ref.Type, e.env.Type)
			assert.Equal(t, ref.Version, e.env.Version)
			assert.Equal(t, r.AccountID, e.env.AccountID)
			cmdIDs = append(cmdIDs, e.env.CommandID)
		}
		sort.Strings(cmdIDs)
		assert.Equal(t, cmdIDs[0], cmdIDs[len(cmdIDs)-1], "one command's events share its command_id")
	}
	for _, e := range stored {
		if e.env.Type == "CreditsAllocated" {
			assert.Equal(t, "trace-"+e.env.AccountID, e.env.CorrelationID, "correlation_id is copied")
		} else if e.env.CorrelationID != e.env.CommandID {
			t.Errorf("position %d: correlation_id %q defaults to the command_id %q", e.position, e.env.CorrelationID, e.env.CommandID)
		}
	}
}
