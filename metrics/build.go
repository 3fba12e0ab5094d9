package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditledger/creditledger/internal/buildinfo"
)

// buildInfo is creditledger_build_info: always 1, its labels say which build runs.
func buildInfo(info buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels name the running build (version, VCS revision, Go version).",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(info.Version, info.Revision, info.GoVersion).Set(1)
	return g
}

// parkedMessages is creditledger_projection_parked_messages, read at scrape time.
func parkedMessages(count func() int) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "projection_parked_messages",
		Help: "Stream messages the projector could not decode or apply and skipped (parked); any is worth a look: GET /healthz lists them.",
	}, func() float64 { return float64(count()) })
}

// AuditReads are the counts of one of the auditors' relays, of direct gets or of stream infos
// (auditread.Stats, by value: the metrics package imports no relay).
type AuditReads struct {
	InFlight, Waiting              int64
	Served, Refused, Busy, Dropped uint64
}

// auditReadCollectors are a relay's gauges and its requests by outcome, named name_in_flight,
// name_waiting and name_total, for the auditors' requests of kind what: busy ones mean auditors
// asked more at once than the node's slots and queue take (they are told 429).
func auditReadCollectors(name, what string, stats func() AuditReads) []prometheus.Collector {
	gauge := func(suffix, help string, f func(AuditReads) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name + suffix, Help: help},
			func() float64 { return float64(f(stats())) })
	}
	outcome := func(o string, f func(AuditReads) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: name + "_total", ConstLabels: prometheus.Labels{"outcome": o},
			Help: "Auditors' " + what + " through the ledger's relay, by outcome: served, refused (malformed, or asking what the ledger does not serve), busy (429: no slot in time), dropped (not through an auditor import).",
		}, func() float64 { return float64(f(stats())) })
	}
	return []prometheus.Collector{
		gauge("_in_flight", "Auditors' "+what+" holding one of the relay's slots now.", func(a AuditReads) int64 { return a.InFlight }),
		gauge("_waiting", "Auditors' "+what+" queued for a slot now.", func(a AuditReads) int64 { return a.Waiting }),
		outcome("served", func(a AuditReads) uint64 { return a.Served }),
		outcome("refused", func(a AuditReads) uint64 { return a.Refused }),
		outcome("busy", func(a AuditReads) uint64 { return a.Busy }),
		outcome("dropped", func(a AuditReads) uint64 { return a.Dropped }),
	}
}

// QueryCode is the code label of a query answered over HTTP, the same as over NATS: the ledger's
// error code when the handler set one (HTTPErrorCodeHeader), else a code for the status (401
// unauthenticated, 403 permission_denied and the statuses of the ledger's own codes).
func QueryCode(status int, ledgerCode string) string {
	switch {
	case ledgerCode != "":
		return ledgerCode
	case status < 400:
		return OutcomeOK
	}
	switch status {
	case http.StatusBadRequest:
		return "invalid_argument"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "permission_denied"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusInternalServerError:
		return "internal"
	default:
		return "http_" + strconv.Itoa(status)
	}
}
