package ledger

import "fmt"

// Code is a stable rejection reason; clients in any language branch on it, so codes never change.
type Code string

// The rejection codes of the command and query contract.
const (
	CodeInvalidArgument         Code = "invalid_argument"
	CodeNotFound                Code = "not_found"
	CodeAlreadyExists           Code = "already_exists"
	CodeAlreadyActivated        Code = "already_activated"
	CodeActivationWindowExpired Code = "activation_window_expired"
	CodeLicenseExpired          Code = "license_expired"
	CodeLicenseNotActive        Code = "license_not_active"
	CodeInsufficientCredits     Code = "insufficient_credits"
	CodeInsufficientAllocation  Code = "insufficient_allocation"
	CodeUnknownFeature          Code = "unknown_feature"
	CodeFeatureNotPaygEligible  Code = "feature_not_payg_eligible"
	CodeFeatureOnPayg           Code = "feature_on_payg"
	CodeNoActivePaygContract    Code = "no_active_payg_contract"
	CodeSwitchTooSoon           Code = "switch_too_soon"
	CodeAlreadyOnModel          Code = "already_on_model"
	CodeVersionConflict         Code = "version_conflict"
	CodeIdempotencyKeyReused    Code = "idempotency_key_reused"
	CodeUnavailable             Code = "unavailable"
	CodeInternal                Code = "internal"
	// CodeHistoryBroken refuses commands on an account whose stored history has a gap, a foreign
	// or undecodable message, or a broken hash chain; data carries the position where it breaks.
	CodeHistoryBroken Code = "history_broken"
	// Pay-as-you-go usage and marketplace subscriptions (issue 5).
	CodeFeatureNotOnPayg     Code = "feature_not_on_payg"
	CodeUsageTooLate         Code = "usage_too_late"
	CodeSubscriptionConflict Code = "subscription_conflict"
)

// Error is the one domain error type: a stable code, a human message, and optional data
// (for example available and requested credits) that callers may act on.
type Error struct {
	Code    Code
	Message string
	Data    map[string]string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Is matches any *Error with the same code, so errors.Is(err, ErrInsufficientCredits) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; the errors returned carry messages and data.
var (
	ErrInvalidArgument      = &Error{Code: CodeInvalidArgument}
	ErrNotFound             = &Error{Code: CodeNotFound}
	ErrAlreadyExists        = &Error{Code: CodeAlreadyExists}
	ErrAlreadyActivated     = &Error{Code: CodeAlreadyActivated}
	ErrLicenseExpired       = &Error{Code: CodeLicenseExpired}
	ErrLicenseNotActive     = &Error{Code: CodeLicenseNotActive}
	ErrInsufficientCredits  = &Error{Code: CodeInsufficientCredits}
	ErrUnknownFeature       = &Error{Code: CodeUnknownFeature}
	ErrFeatureOnPayg        = &Error{Code: CodeFeatureOnPayg}
	ErrSwitchTooSoon        = &Error{Code: CodeSwitchTooSoon}
	ErrAlreadyOnModel       = &Error{Code: CodeAlreadyOnModel}
	ErrVersionConflict      = &Error{Code: CodeVersionConflict}
	ErrUnavailable          = &Error{Code: CodeUnavailable}
	ErrInternal             = &Error{Code: CodeInternal}
	ErrHistoryBroken        = &Error{Code: CodeHistoryBroken}
	ErrFeatureNotOnPayg     = &Error{Code: CodeFeatureNotOnPayg}
	ErrUsageTooLate         = &Error{Code: CodeUsageTooLate}
	ErrSubscriptionConflict = &Error{Code: CodeSubscriptionConflict}
)

// Sentinels for errors.Is whose earlier names did not match their codes.
var (
	ErrActivationWindowExpired = &Error{Code: CodeActivationWindowExpired}
	ErrInsufficientAllocation  = &Error{Code: CodeInsufficientAllocation}
	ErrFeatureNotPaygEligible  = &Error{Code: CodeFeatureNotPaygEligible}
	ErrNoActivePaygContract    = &Error{Code: CodeNoActivePaygContract}
	ErrIdempotencyKeyReused    = &Error{Code: CodeIdempotencyKeyReused}
)

// The earlier names, kept so that callers still compile.
var (
	// Deprecated: use ErrActivationWindowExpired.
	ErrActivationWindow = ErrActivationWindowExpired
	// Deprecated: use ErrInsufficientAllocation.
	ErrInsufficientAlloc = ErrInsufficientAllocation
	// Deprecated: use ErrFeatureNotPaygEligible.
	ErrNotPaygEligible = ErrFeatureNotPaygEligible
	// Deprecated: use ErrNoActivePaygContract.
	ErrNoActivePayg = ErrNoActivePaygContract
	// Deprecated: use ErrIdempotencyKeyReused.
	ErrIdempotencyReused = ErrIdempotencyKeyReused
)

// Reject builds a domain error with a formatted message.
func Reject(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
