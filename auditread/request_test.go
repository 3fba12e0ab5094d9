package auditread

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBoundCapsAndRefuses(t *testing.T) {
	t.Parallel()
	l := Limits{MaxBatch: 1000, MaxBytes: 4 << 20}
	for _, tc := range []struct {
		name, body string
		bySubject  bool
		want       map[string]any // the body passed on
		batch      bool
		refused    *status
	}{
		{name: "huge", body: `{"seq":1,"batch":1000000000,"max_bytes":1000000000000}`,
			want: map[string]any{"seq": 1.0, "batch": 1000.0, "max_bytes": float64(4 << 20)}, batch: true},
		{name: "no max_bytes is the cap", body: `{"seq":5,"batch":10}`,
			want: map[string]any{"seq": 5.0, "batch": 10.0, "max_bytes": float64(4 << 20)}, batch: true},
		{name: "single get", body: `{"seq":7}`, want: map[string]any{"seq": 7.0, "max_bytes": float64(4 << 20)}},
		{name: "next on a subject", body: `{"seq":1,"next_by_subj":"ledger.events.>","batch":5,"up_to_seq":9,"no_hdr":true}`,
			want: map[string]any{"seq": 1.0, "next_by_subj": "ledger.events.>", "batch": 5.0, "up_to_seq": 9.0, "no_hdr": true, "max_bytes": float64(4 << 20)}, batch: true},
		{name: "multi last is a capped batch", body: `{"multi_last":["a.>"]}`,
			want: map[string]any{"multi_last": []any{"a.>"}, "batch": 1000.0, "max_bytes": float64(4 << 20)}, batch: true},
		{name: "multi last keeps a smaller batch", body: `{"multi_last":["a.>"],"batch":5}`,
			want: map[string]any{"multi_last": []any{"a.>"}, "batch": 5.0, "max_bytes": float64(4 << 20)}, batch: true},
		{name: "unknown fields dropped", body: `{"seq":1,"deliver_subject":"ledger.cmd.x"}`,
			want: map[string]any{"seq": 1.0, "max_bytes": float64(4 << 20)}},
		{name: "last by subject, no body", bySubject: true},
		{name: "empty", refused: &statusEmpty},
		{name: "malformed", body: `{"seq":`, refused: &statusMalformed},
		{name: "wrong type", body: `{"seq":"1"}`, refused: &statusMalformed},
		{name: "negative batch", body: `{"seq":1,"batch":-1}`, refused: &statusBad},
		{name: "negative bytes", body: `{"seq":1,"max_bytes":-1}`, refused: &statusBad},
	} {
		got, refused := l.bound([]byte(tc.body), tc.bySubject)
		if tc.refused != nil {
			assert.Equal(t, tc.refused, refused, tc.name)
			continue
		}
		require.Nil(t, refused, tc.name)
		assert.Equal(t, tc.batch, got.batch, tc.name)
		if tc.want == nil {
			assert.Empty(t, got.body, tc.name)
			continue
		}
		var body map[string]any
		require.NoError(t, json.Unmarshal(got.body, &body), tc.name)
		assert.Equal(t, tc.want, body, tc.name)
	}
}

func TestWireHeaderKeepsTheStatusLine(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"NATS/1.0 204 EOB\r\nNats-Last-Sequence: 42\r\nNats-Num-Pending: 0\r\n\r\n",
		"NATS/1.0 404 Message Not Found\r\n\r\n",
		"NATS/1.0\r\nNats-Sequence: 1\r\nNats-Stream: LEDGER\r\nX-Two: a\r\nX-Two: b\r\n\r\n",
	} {
		h, err := nats.DecodeHeadersMsg([]byte(raw))
		require.NoError(t, err)
		assert.Equal(t, raw, string(wireHeader(h)))
	}
	assert.Nil(t, wireHeader(nil), "no headers (no_hdr): none written")
	assert.Equal(t, "NATS/1.0 408 Bad Request\r\n\r\n", string(statusBad.header()))
}
