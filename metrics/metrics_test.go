package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/buildinfo"
	"github.com/creditledger/creditledger/metrics"
	"github.com/creditledger/creditledger/writer"
)

type fakeWriter struct {
	stats writer.Stats
	head  uint64
}

func (f fakeWriter) Stats() writer.Stats { return f.stats }
func (f fakeWriter) Head() uint64        { return f.head }

type fakeProjector uint64

func (p fakeProjector) Position() uint64 { return uint64(p) }

type fakeStream struct {
	head   uint64
	stored map[uint64]time.Time
	err    error
}

func (s fakeStream) Head(context.Context) (uint64, error) { return s.head, s.err }
func (s fakeStream) StoredAt(_ context.Context, p uint64) (time.Time, error) {
	if t, ok := s.stored[p]; ok {
		return t, nil
	}
	return time.Time{}, errors.New("no such message")
}

func TestLagAgainstTheStream(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m, err := metrics.New(metrics.Sources{
		Writer: fakeWriter{head: 90, stats: writer.Stats{Records: 90, Retried: 3, Replayed: 2, ReadBack: 1, RejectionReadBack: 4,
			RejectionsPruned: 5, Revocations: 6, RevocationsFailed: 7}},
		Projector: fakeProjector(95),
		// Other nodes appended up to 100; position 96 was stored 7 s ago.
		Stream:     fakeStream{head: 100, stored: map[uint64]time.Time{96: now.Add(-7 * time.Second)}},
		ReadModels: []string{"balance", "licenses"},
		Now:        func() time.Time { return now },
	})
	require.NoError(t, err)
	for _, rm := range []string{"balance", "licenses"} {
		assert.Equal(t, 95.0, value(t, m, "creditledger_projection_position", "read_model", rm))
		assert.Equal(t, 5.0, value(t, m, "creditledger_projection_lag_events", "read_model", rm))
		assert.Equal(t, 7.0, value(t, m, "creditledger_projection_lag_seconds", "read_model", rm))
	}
	assert.Equal(t, 100.0, value(t, m, "creditledger_stream_head_position"))
	assert.Equal(t, 90.0, value(t, m, "creditledger_events_appended_total"))
	assert.Equal(t, 3.0, value(t, m, "creditledger_conflicts_retried_total"))
	assert.Equal(t, 2.0, value(t, m, "creditledger_idempotent_replays_total"))
	assert.Equal(t, 1.0, value(t, m, "creditledger_idempotency_read_back_total"))
	assert.Equal(t, 4.0, value(t, m, "creditledger_rejection_read_back_total"))
	assert.Equal(t, 5.0, value(t, m, "creditledger_rejections_pruned_total"))
	assert.Equal(t, 6.0, value(t, m, "creditledger_rejections_revoked_total"))
	assert.Equal(t, 7.0, value(t, m, "creditledger_rejection_revocations_failed_total"))
}

func TestLagWithoutTheStream(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Sources{
		Writer: fakeWriter{head: 10}, Projector: fakeProjector(4), Stream: fakeStream{err: errors.New("no quorum")},
	})
	require.NoError(t, err)
	assert.Equal(t, 6.0, value(t, m, "creditledger_projection_lag_events", "read_model", "all"), "against the writer's head")
	assert.Equal(t, 0.0, value(t, m, "creditledger_projection_lag_seconds", "read_model", "all"), "unknown without the stream")
}

// value gathers the registry and returns the one sample of name with the given label pairs.
func value(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, mt := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case mt.GetGauge() != nil:
				return mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				return mt.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func TestObserveAndServe(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Sources{Writer: fakeWriter{}, Projector: fakeProjector(0)})
	require.NoError(t, err)
	m.ObserveCommand("allocate_credits", "ok", 3*time.Millisecond)
	m.ObserveCommand("allocate_credits", "insufficient_credits", time.Millisecond)
	m.ObserveQuery("balance", metrics.TransportNATS, "ok", time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	assert.Contains(t, body, `creditledger_commands_total{code="insufficient_credits",command="allocate_credits"} 1`)
	assert.Contains(t, body, `creditledger_command_duration_seconds_count{command="allocate_credits"} 2`)
	assert.Contains(t, body, `creditledger_query_duration_seconds_count{query="balance",transport="nats"} 1`)
	assert.Contains(t, body, "go_goroutines")
	_, err = metrics.New(metrics.Sources{})
	assert.Error(t, err)
}

func TestBuildInfoParkedAndQueryCodes(t *testing.T) {
	t.Parallel()
	parked := 0
	m, err := metrics.New(metrics.Sources{Writer: fakeWriter{}, Projector: fakeProjector(0),
		ParkedCount: func() int { return parked },
		Build:       buildinfo.Info{Version: "1.2.3", Revision: "abc", GoVersion: "go1.26.8"}})
	require.NoError(t, err)
	assert.Equal(t, 1.0, value(t, m, "creditledger_build_info", "version", "1.2.3", "revision", "abc", "goversion", "go1.26.8"))
	assert.Equal(t, 0.0, value(t, m, "creditledger_projection_parked_messages"))
	parked = 2
	assert.Equal(t, 2.0, value(t, m, "creditledger_projection_parked_messages"), "read at scrape time")

	for _, c := range []struct {
		status int
		ledger string
		want   string
	}{
		{200, "", "ok"}, {404, "not_found", "not_found"}, {422, "insufficient_credits", "insufficient_credits"},
		{404, "", "not_found"}, {401, "", "unauthenticated"}, {403, "", "permission_denied"},
		{405, "", "method_not_allowed"}, {413, "", "http_413"},
	} {
		assert.Equal(t, c.want, metrics.QueryCode(c.status, c.ledger), "%d %q", c.status, c.ledger)
	}
}

// The auditors' relays are read at scrape time: their slots in use, their queues and their
// requests by outcome, one set of series each; a node without relays has none of these series.
func TestAuditReadMetrics(t *testing.T) {
	t.Parallel()
	var a, i metrics.AuditReads
	m, err := metrics.New(metrics.Sources{Writer: fakeWriter{}, Projector: fakeProjector(0),
		AuditReads: func() metrics.AuditReads { return a }, AuditInfos: func() metrics.AuditReads { return i }})
	require.NoError(t, err)
	a = metrics.AuditReads{InFlight: 3, Waiting: 5, Served: 40, Refused: 2, Busy: 7, Dropped: 1}
	i = metrics.AuditReads{InFlight: 1, Waiting: 2, Served: 9, Refused: 4, Busy: 6, Dropped: 8}
	assert.Equal(t, 3.0, value(t, m, "creditledger_audit_reads_in_flight"))
	assert.Equal(t, 5.0, value(t, m, "creditledger_audit_reads_waiting"))
	for outcome, want := range map[string]float64{"served": 40, "refused": 2, "busy": 7, "dropped": 1} {
		assert.Equal(t, want, value(t, m, "creditledger_audit_reads_total", "outcome", outcome), outcome)
	}
	assert.Equal(t, 1.0, value(t, m, "creditledger_audit_infos_in_flight"))
	assert.Equal(t, 2.0, value(t, m, "creditledger_audit_infos_waiting"))
	for outcome, want := range map[string]float64{"served": 9, "refused": 4, "busy": 6, "dropped": 8} {
		assert.Equal(t, want, value(t, m, "creditledger_audit_infos_total", "outcome", outcome), outcome)
	}
	none, err := metrics.New(metrics.Sources{Writer: fakeWriter{}, Projector: fakeProjector(0)})
	require.NoError(t, err)
	families, err := none.Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		assert.NotContains(t, f.GetName(), "audit_reads")
		assert.NotContains(t, f.GetName(), "audit_infos")
	}
}
