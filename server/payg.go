package server

import (
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// PaygConfig configures pay-as-you-go usage metering; zero fields take the ledger's defaults
// (ledger.DefaultUsageLateness, ledger.DefaultUsageClockSkew, ledger.DefaultRateCard).
type PaygConfig struct {
	// UsageLateness is how long after it happened usage may still be recorded (default 48 h).
	UsageLateness time.Duration
	// UsageClockSkew is how far in the future occurred_at may be (default 5 min).
	UsageClockSkew time.Duration
	// RateCard prices the usage a contract has no rate for.
	RateCard *ledger.RateCard
}

// apply sets the usage settings on the rules the writer decides with.
func (c PaygConfig) apply(r *ledger.Rules) {
	r.UsageLateness, r.UsageClockSkew, r.RateCard = c.UsageLateness, c.UsageClockSkew, c.RateCard
}
