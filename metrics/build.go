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
