package ledgerclient

import "github.com/creditledger/creditledger/ledger"

// Error is a rejection: a stable Code, a message, and Data callers may act on (for
// insufficient_credits: available and requested).
type Error = ledger.Error

// Code is a stable rejection code ("insufficient_credits").
type Code = ledger.Code

// The rejection codes, one value per code, each named after its code; compare with errors.Is.
var (
	ErrInvalidArgument         = ledger.ErrInvalidArgument
	ErrNotFound                = ledger.ErrNotFound
	ErrAlreadyExists           = ledger.ErrAlreadyExists
	ErrAlreadyActivated        = ledger.ErrAlreadyActivated
	ErrActivationWindowExpired = ledger.ErrActivationWindowExpired
	ErrLicenseExpired          = ledger.ErrLicenseExpired
	ErrLicenseNotActive        = ledger.ErrLicenseNotActive
	ErrInsufficientCredits     = ledger.ErrInsufficientCredits
	ErrInsufficientAllocation  = ledger.ErrInsufficientAllocation
	ErrUnknownFeature          = ledger.ErrUnknownFeature
	ErrFeatureNotPaygEligible  = ledger.ErrFeatureNotPaygEligible
	ErrFeatureOnPayg           = ledger.ErrFeatureOnPayg
	ErrNoActivePaygContract    = ledger.ErrNoActivePaygContract
	ErrSwitchTooSoon           = ledger.ErrSwitchTooSoon
	ErrAlreadyOnModel          = ledger.ErrAlreadyOnModel
	ErrVersionConflict         = ledger.ErrVersionConflict
	ErrIdempotencyKeyReused    = ledger.ErrIdempotencyKeyReused
	ErrUnavailable             = ledger.ErrUnavailable
	ErrInternal                = ledger.ErrInternal
	ErrHistoryBroken           = ledger.ErrHistoryBroken
	ErrFeatureNotOnPayg        = ledger.ErrFeatureNotOnPayg
	ErrUsageTooLate            = ledger.ErrUsageTooLate
	ErrSubscriptionConflict    = ledger.ErrSubscriptionConflict
)
