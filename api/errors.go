package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/creditledger/creditledger/ledger"
)

// ErrorBody is the error object of a rejection.
type ErrorBody struct {
	Code    ledger.Code       `json:"code"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data,omitempty"`
}

// Rejected is the reply to a command or query that changed nothing.
type Rejected struct {
	OK    bool      `json:"ok"`
	Error ErrorBody `json:"error"`
}

// AsError turns any error into a domain error; anything that is not one is internal.
func AsError(err error) *ledger.Error {
	var le *ledger.Error
	if errors.As(err, &le) {
		return le
	}
	return ledger.Reject(ledger.CodeInternal, "%v", err)
}

// RejectedBody renders a domain error as the wire rejection.
func RejectedBody(e *ledger.Error) []byte {
	b, _ := json.Marshal(Rejected{Error: ErrorBody{Code: e.Code, Message: e.Message, Data: e.Data}})
	return b
}

// HTTPStatus maps an error code to its HTTP status; it is the one place that mapping lives.
func HTTPStatus(c ledger.Code) int {
	switch c {
	case ledger.CodeInvalidArgument:
		return http.StatusBadRequest
	case ledger.CodeNotFound:
		return http.StatusNotFound
	case ledger.CodeAlreadyExists, ledger.CodeAlreadyActivated, ledger.CodeVersionConflict, ledger.CodeIdempotencyKeyReused:
		return http.StatusConflict
	case ledger.CodeUnavailable:
		return http.StatusServiceUnavailable
	case ledger.CodeInternal, ledger.CodeHistoryBroken:
		return http.StatusInternalServerError
	default:
		return http.StatusUnprocessableEntity
	}
}

// Headers of a rejection. ErrorHeader and ErrorCodeHeader are the NATS micro error headers
// (nats.go micro.ErrorHeader and micro.ErrorCodeHeader); the code header carries the stable text
// code ("insufficient_credits"), which outside clients branch on. This package does not import
// micro, so that the client and the writer do not link it; a test checks the names agree.
const (
	ErrorHeader     = "Nats-Service-Error"
	ErrorCodeHeader = "Nats-Service-Error-Code"
)

// RetryAfterData is the data key of an unavailable rejection that says, in whole seconds, when
// the request may succeed if sent again (the node was busy, not broken); over HTTP WriteError
// also sends it as the Retry-After header.
const RetryAfterData = "retry_after_s"

// HTTPErrorCodeHeader carries the stable text code of an HTTP error answer (the body has it
// too), so that proxies, logs and the metrics can read it without parsing the body.
const HTTPErrorCodeHeader = "Ledger-Error-Code"

// ErrorHeaders are the micro error headers of a rejection, for a reply built by hand. The
// ledger's own endpoints answer rejections with Request.Error instead (package
// internal/microsvc counts them in $SRV.STATS, also when sent after the handler returned). The
// map converts to micro.Headers.
func ErrorHeaders(e *ledger.Error) map[string][]string {
	return map[string][]string{ErrorHeader: {e.Message}, ErrorCodeHeader: {string(e.Code)}}
}
