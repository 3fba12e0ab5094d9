package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go/micro"

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

// ErrorHeaders are the micro error headers of a rejection. Rejections are sent with Respond and
// these headers rather than micro's Request.Error, because replies leave from other goroutines
// (the writer, a query's waiter) and Request.Error records the error in state micro's handler
// wrapper reads concurrently.
func ErrorHeaders(e *ledger.Error) micro.Headers {
	return micro.Headers{micro.ErrorHeader: {e.Message}, micro.ErrorCodeHeader: {string(e.Code)}}
}
