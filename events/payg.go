package events

import (
	"time"

	"github.com/shopspring/decimal"
)

// Where the rate of a UsageRecorded event came from.
const (
	RateFromContract = "contract"
	RateFromCard     = "rate_card"
)

// Why a SubscriptionUnlinked event happened.
const (
	UnlinkRequested = "unlinked"
	UnlinkMoved     = "moved"
)

// AccountExpiredReason is the state an account enters when its grace period ends.
const AccountExpiredReason = "trial or subscription expired"

// UsageRecorded records metered pay-as-you-go usage of a feature and its price. It carries
// everything an auditor needs to recompute the amount: quantity x rate = amount, the contract
// whose rates applied, the rate key looked up (for example
// "advanced_server_workload_protection:data_center"), where the rate came from (the contract or
// the default rate card, with the card's version) and a sentence saying why that rate applies.
// Amount keeps full precision; rounding to the currency's minor unit happens only for display.
// VCenter is true for a computer that is part of a vCenter account, which pays the data-center
// rate (issue 16); events without it (every one stored before) describe no vCenter computer.
type UsageRecorded struct {
	UsageID        string          `json:"usage_id"`
	Feature        string          `json:"feature"`
	Quantity       decimal.Decimal `json:"quantity"`
	Unit           string          `json:"unit"`
	OccurredAt     time.Time       `json:"occurred_at"`
	RecordedAt     time.Time       `json:"recorded_at"`
	InstanceSize   string          `json:"instance_size,omitempty"`
	CloudConnector string          `json:"cloud_connector,omitempty"`
	VCenter        bool            `json:"vcenter,omitempty"`
	ContractID     string          `json:"contract_id"`
	RateKey        string          `json:"rate_key"`
	Rate           decimal.Decimal `json:"rate"`
	RateSource     string          `json:"rate_source"`
	RateCard       string          `json:"rate_card,omitempty"`
	RateReason     string          `json:"rate_reason"`
	Amount         decimal.Decimal `json:"amount"`
	Currency       string          `json:"currency"`
}

// SubscriptionLinked records a marketplace subscription becoming the account's way to pay.
// PreviousAccountID names the account it was moved from, whose SubscriptionUnlinked event is in
// the same atomic append.
type SubscriptionLinked struct {
	SubscriptionID    string    `json:"subscription_id"`
	Marketplace       string    `json:"marketplace"`
	LinkedAt          time.Time `json:"linked_at"`
	PreviousAccountID string    `json:"previous_account_id,omitempty"`
}

// SubscriptionUnlinked records an account losing its marketplace subscription, on request or
// because the subscription was linked to another account (MovedToAccountID, whose
// SubscriptionLinked event is in the same atomic append). The account is in its grace period
// until GraceUntil.
type SubscriptionUnlinked struct {
	SubscriptionID   string    `json:"subscription_id"`
	Marketplace      string    `json:"marketplace"`
	Reason           string    `json:"reason"`
	MovedToAccountID string    `json:"moved_to_account_id,omitempty"`
	UnlinkedAt       time.Time `json:"unlinked_at"`
	GraceUntil       time.Time `json:"grace_until"`
}

// AccountExpired records the end of an account's grace period without a new subscription: the
// "trial or subscription expired" state. ExpiredAt is the end of the grace period.
type AccountExpired struct {
	Reason         string    `json:"reason"`
	SubscriptionID string    `json:"subscription_id"`
	ExpiredAt      time.Time `json:"expired_at"`
}
