package ledger_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// evolveBase is an account with something for every event type to act on: a pending Azure
// license, an active sales license, an allocation and an inactive PAYG contract.
func evolveBase() ledger.Account {
	return fold(hist(
		purchased("az-1", ledger.SourceAzure, "100", true, t0),
		active("lic-2", ledger.SourceSales, "500", true, t0),
		allocated("container_security", "50"),
		events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0},
	)...)
}

// evolveSamples holds one payload per registered event type, each of which changes evolveBase.
func evolveSamples() map[string]events.Payload {
	exp := t0.AddDate(1, 0, 0)
	return map[string]events.Payload{
		events.TypeLicensePurchased:      purchased("lic-new", ledger.SourceAWS, "10", false, t0),
		events.TypeLicenseActivated:      activated("az-1", t0.Add(time.Hour)),
		events.TypeContractUpgraded:      events.ContractUpgraded{LicenseID: "lic-2", AdditionalCredits: dec("25"), ExpiresAt: exp, UpgradedAt: t0},
		events.TypeCreditsAllocated:      allocated("file_security", "5"),
		events.TypeCreditsReleased:       events.CreditsReleased{Feature: "container_security", Credits: dec("5"), Reason: events.ReleaseRequested},
		events.TypeAutoRenewSet:          events.AutoRenewSet{LicenseID: "az-1", Enabled: false},
		events.TypePaygContractPurchased: events.PaygContractPurchased{ContractID: "payg-2", PurchasedAt: t0},
		events.TypePaygContractActivated: events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: t0},
		events.TypeBillingModelSwitched:  switched("file_security", ledger.ModelCredits, ledger.ModelPayg, t0),
		events.TypeLicenseRenewed:        events.LicenseRenewed{LicenseID: "lic-2", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
		events.TypeLicenseExpired:        events.LicenseExpired{LicenseID: "lic-2", ExpiredAt: exp},
		events.TypeUsageRecorded: events.UsageRecorded{UsageID: "u-1", Feature: "file_security", Quantity: dec("3"), Unit: "gb",
			OccurredAt: t0, RecordedAt: t0, ContractID: "payg-1", RateKey: "file_security", Rate: dec("0.03"),
			RateSource: events.RateFromCard, RateCard: "2026-01", RateReason: "card", Amount: dec("0.09"), Currency: "USD"},
		events.TypeSubscriptionLinked: events.SubscriptionLinked{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAWS, LinkedAt: t0},
		events.TypeSubscriptionUnlinked: events.SubscriptionUnlinked{SubscriptionID: "sub-1", Marketplace: ledger.MarketplaceAWS,
			Reason: events.UnlinkRequested, UnlinkedAt: t0, GraceUntil: t0.Add(ledger.SubscriptionGracePeriod)},
		events.TypeAccountExpired: events.AccountExpired{Reason: events.AccountExpiredReason, SubscriptionID: "sub-1", ExpiredAt: t0},
	}
}

func TestEvolveSamplesCoverEveryEventType(t *testing.T) {
	t.Parallel()
	samples := evolveSamples()
	keys := make([]string, 0, len(samples))
	for k, p := range samples {
		assert.Equal(t, k, p.EventType(), "sample filed under the wrong type")
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, events.Types(), keys)
}

func TestEvolveHandlesEveryEventType(t *testing.T) {
	t.Parallel()
	for typ, p := range evolveSamples() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			base := evolveBase()
			after := ledger.Evolve(base.Clone(), events.Event{
				Envelope: events.Envelope{AccountID: acct, Type: typ, Version: base.Version + 1},
				Data:     p,
			})
			assert.Equal(t, base.Version+1, after.Version, "the version advances")
			after.Version = base.Version
			assert.NotEqual(t, base, after, "%s changed nothing but the version", typ)
		})
	}
}

func TestEvolveStartsFromZeroAccount(t *testing.T) {
	t.Parallel()
	a := ledger.Evolve(ledger.Account{}, events.Event{
		Envelope: events.Envelope{AccountID: "acc-z", Version: 1},
		Data:     purchased("lic-1", ledger.SourceSales, "10", true, t0),
	})
	assert.Equal(t, "acc-z", a.ID)
	assert.Equal(t, uint64(1), a.Version)
	assert.Contains(t, a.Licenses, "lic-1")
	assert.NotNil(t, a.Allocations)
	assert.NotNil(t, a.Features)
	assert.NotNil(t, a.Contracts)
}

// cloneHistory populates every map and slice of an account, including switch history.
func cloneHistory() []events.Payload {
	at := t0.AddDate(0, 0, 1)
	return hist(
		active("az-1", ledger.SourceAzure, "100", true, t0),
		events.ContractUpgraded{LicenseID: "az-1", AdditionalCredits: dec("5"), ItemID: "az-1-u1", ExpiresAt: t0.AddDate(1, 0, 0), UpgradedAt: at},
		active("lic-2", ledger.SourceSales, "500", true, t0),
		allocated("file_security", "50"),
		events.PaygContractPurchased{ContractID: "payg-1", PurchasedAt: t0, Rates: map[string]decimal.Decimal{"file_security": dec("0.5")}},
		events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: t0},
		switched("container_security", ledger.ModelCredits, ledger.ModelPayg, at),
	)
}

func TestCloneIsIndependent(t *testing.T) {
	t.Parallel()
	want := fold(cloneHistory()...)
	orig := fold(cloneHistory()...)
	c := orig.Clone()
	require.Equal(t, want, c, "a clone starts equal")

	// Change the clone through Evolve and directly, in every map and slice.
	later := t0.AddDate(0, 2, 0)
	c = apply(c,
		purchased("lic-3", ledger.SourceAWS, "10", true, later),
		events.AutoRenewSet{LicenseID: "az-1", Enabled: false},
		events.LicenseExpired{LicenseID: "lic-2", ExpiredAt: later},
		allocated("file_security", "5"),
		events.CreditsReleased{Feature: "file_security", Credits: dec("55"), Reason: events.ReleaseRequested},
		switched("container_security", ledger.ModelPayg, ledger.ModelCredits, later),
		events.PaygContractPurchased{ContractID: "payg-2", PurchasedAt: later},
	)
	c.LicenseOrder[0] = "changed"
	c.ContractOrder[0] = "changed"
	fb := c.Features["container_security"]
	fb.History[0].To = "changed"
	c.Features["container_security"] = fb
	c.Allocations["email_security"] = dec("1")

	assert.Equal(t, want, orig, "changing a clone must not change the original")

	// And the other way round: a fresh clone survives changes to the original.
	c2 := orig.Clone()
	orig = apply(orig, events.LicenseExpired{LicenseID: "az-1", ExpiredAt: later})
	orig.LicenseOrder = append(orig.LicenseOrder[:1], "x")
	orig.Features["container_security"].History[0].From = "changed"
	assert.Equal(t, want, c2, "changing the original must not change a clone")
}

// TestCloneDoesNotShareRates covers Clone's promise to share nothing mutable, for the rate table
// of a PAYG contract.
func TestCloneDoesNotShareRates(t *testing.T) {
	t.Parallel()
	orig := fold(cloneHistory()...)
	c := orig.Clone()
	c.Contracts["payg-1"].Rates["file_security"] = dec("99")
	assertDecimal(t, "0.5", orig.Contracts["payg-1"].Rates["file_security"], "original rate")
}

// oracleLicense is the independent integer model of one license.
type oracleLicense struct {
	source      string
	credits     int64
	autoRenew   bool
	status      string
	purchasedAt time.Time
	expiresAt   time.Time
}

// oracle is a deliberately simple model of an account's credit pool, written without the ledger's
// code: integer credits, a license table and per-feature allocations.
type oracle struct {
	licenses map[string]oracleLicense
	order    []string
	alloc    map[string]int64
}

func newOracle() *oracle {
	return &oracle{licenses: map[string]oracleLicense{}, alloc: map[string]int64{}}
}

func (o *oracle) clone() *oracle {
	c := &oracle{licenses: map[string]oracleLicense{}, order: append([]string(nil), o.order...), alloc: map[string]int64{}}
	for k, v := range o.licenses {
		c.licenses[k] = v
	}
	for k, v := range o.alloc {
		c.alloc[k] = v
	}
	return c
}

// lapse renews or expires every license whose term has ended by now.
func (o *oracle) lapse(now time.Time) {
	for _, id := range o.order {
		l := o.licenses[id]
		if l.status == ledger.StatusExpired || l.expiresAt.After(now) {
			continue
		}
		if !l.autoRenew {
			l.status = ledger.StatusExpired
		}
		for l.autoRenew && !l.expiresAt.After(now) {
			l.expiresAt = oracleMonths(l.expiresAt, 12)
		}
		o.licenses[id] = l
	}
}

// oracleMonths is "the same day n months later, or that month's last day if it is shorter",
// written independently of the ledger's addMonths.
func oracleMonths(t time.Time, n int) time.Time {
	want := (int(t.Month()) - 1 + n) % 12
	c := t.AddDate(0, n, 0)
	for int(c.Month())-1 != want { // the day overflowed into the next month: step back
		c = c.AddDate(0, 0, -1)
	}
	return c
}

func (o *oracle) total() int64 {
	var n int64
	for _, l := range o.licenses {
		if l.status == ledger.StatusActive {
			n += l.credits
		}
	}
	return n
}

func (o *oracle) allocated() int64 {
	var n int64
	for _, c := range o.alloc {
		n += c
	}
	return n
}

func (o *oracle) available() int64 { return max(0, o.total()-o.allocated()) }

var oracleFeatures = map[string]bool{
	"cloud_account_assessment": true, "container_security": true, "file_security": true,
	"advanced_server_workload_protection": true, "endpoint_security_core": true, "email_security": true,
}

// apply decides a command on the model, returning "" when it is accepted or the expected code.
func (o *oracle) apply(cmd ledger.Command, now time.Time) ledger.Code {
	o.lapse(now)
	switch c := cmd.(type) {
	case ledger.PurchaseLicense:
		n := c.Credits.IntPart()
		if _, ok := o.licenses[c.LicenseID]; ok {
			return ledger.CodeAlreadyExists
		}
		if c.Source == ledger.SourceAzure && n < 3 {
			return ledger.CodeInvalidArgument
		}
		term, start := c.TermMonths, c.ContractStart
		if term == 0 {
			term = 12
		}
		if start.IsZero() {
			start = now
		}
		o.licenses[c.LicenseID] = oracleLicense{source: c.Source, credits: n, autoRenew: c.AutoRenew, status: ledger.StatusPending,
			purchasedAt: now, expiresAt: oracleMonths(start, term)}
		o.order = append(o.order, c.LicenseID)
		o.lapse(now)
	case ledger.ActivateLicense:
		l, ok := o.licenses[c.LicenseID]
		switch {
		case !ok:
			return ledger.CodeNotFound
		case l.status == ledger.StatusActive:
			return ledger.CodeAlreadyActivated
		case l.status == ledger.StatusExpired:
			return ledger.CodeLicenseExpired
		case l.source == ledger.SourceAWS && now.Sub(l.purchasedAt) > 4*time.Hour:
			return ledger.CodeActivationWindowExpired
		}
		l.status = ledger.StatusActive
		o.licenses[c.LicenseID] = l
	case ledger.AllocateCredits:
		n := c.Credits.IntPart()
		switch {
		case !oracleFeatures[c.Feature]:
			return ledger.CodeUnknownFeature
		case o.available() < n:
			return ledger.CodeInsufficientCredits
		}
		o.alloc[c.Feature] += n
	case ledger.ReleaseCredits:
		n := c.Credits.IntPart()
		switch {
		case !oracleFeatures[c.Feature]:
			return ledger.CodeUnknownFeature
		case o.alloc[c.Feature] < n:
			return ledger.CodeInsufficientAllocation
		}
		o.alloc[c.Feature] -= n
		if o.alloc[c.Feature] == 0 {
			delete(o.alloc, c.Feature)
		}
	case ledger.AdvanceTime:
	default:
		panic(fmt.Sprintf("oracle: unexpected command %T", cmd))
	}
	return ""
}

var propFeatures = []string{"container_security", "file_security", "cloud_account_assessment", "endpoint_security_core", "email_security", "no_such_feature"}

// commandGen draws random commands, mostly about licenses it has already bought.
type commandGen struct {
	r   *rand.Rand
	ids []string
}

func (g *commandGen) licenseID() string {
	switch n := len(g.ids); {
	case n == 0 || g.r.IntN(10) == 0:
		return fmt.Sprintf("L%d", n)
	case g.r.IntN(2) == 0:
		return g.ids[n-1-g.r.IntN(min(n, 3))] // one of the latest, still in its activation window
	default:
		return g.ids[g.r.IntN(n)]
	}
}

func (g *commandGen) next(now time.Time) ledger.Command {
	r := g.r
	switch n := r.IntN(100); {
	case n < 20:
		c := ledger.PurchaseLicense{
			LicenseID: g.licenseID(), Source: []string{ledger.SourceSales, ledger.SourceAWS, ledger.SourceAzure}[r.IntN(3)],
			Credits: decimal.NewFromInt(1 + r.Int64N(300)), TermMonths: r.IntN(4), AutoRenew: r.IntN(2) == 0,
		}
		if c.Source == ledger.SourceAzure && r.IntN(4) == 0 {
			c.Credits = decimal.NewFromInt(1 + r.Int64N(4))
		}
		if r.IntN(5) == 0 {
			c.ContractStart = now.Add(-time.Duration(r.Int64N(int64(400 * 24 * time.Hour))))
		}
		if r.IntN(4) != 0 {
			c.LicenseID = fmt.Sprintf("L%d", len(g.ids))
		}
		g.ids = append(g.ids, c.LicenseID)
		return c
	case n < 35:
		return ledger.ActivateLicense{LicenseID: g.licenseID()}
	case n < 65:
		return ledger.AllocateCredits{Feature: propFeatures[r.IntN(len(propFeatures))], Credits: decimal.NewFromInt(1 + r.Int64N(300))}
	case n < 95:
		return ledger.ReleaseCredits{Feature: propFeatures[r.IntN(len(propFeatures))], Credits: decimal.NewFromInt(1 + r.Int64N(200))}
	default:
		return ledger.AdvanceTime{}
	}
}

// randomStep moves the clock: often minutes or hours (around the AWS window), sometimes days or
// months (expiry and renewal).
func randomStep(r *rand.Rand) time.Duration {
	switch n := r.IntN(100); {
	case n < 50:
		return time.Duration(r.Int64N(int64(90 * time.Minute)))
	case n < 75:
		return time.Duration(r.Int64N(int64(9 * time.Hour)))
	case n < 95:
		return time.Duration(1+r.Int64N(40)) * 24 * time.Hour
	default:
		return time.Duration(60+r.Int64N(140)) * 24 * time.Hour
	}
}

// stepInfo names a step of a random run; it is formatted only when a check fails.
type stepInfo struct {
	step int
	now  time.Time
	cmd  ledger.Command
}

func (s stepInfo) String() string {
	return fmt.Sprintf("step %d at %s: %s %+v", s.step, s.now.Format(time.RFC3339Nano), s.cmd.Name(), s.cmd)
}

func checkPoolInvariants(t *testing.T, a ledger.Account, o *oracle, where stepInfo) {
	t.Helper()
	total, alloc, avail, short := a.TotalCredits(), a.AllocatedCredits(), a.AvailableCredits(), a.Shortfall()
	require.Truef(t, total.Sub(alloc).Equal(avail.Sub(short)), "%s: total %s - allocated %s != available %s - shortfall %s", where, total, alloc, avail, short)
	require.Falsef(t, alloc.IsNegative(), "%s: allocated %s", where, alloc)
	require.Falsef(t, avail.IsNegative(), "%s: available %s", where, avail)
	require.Falsef(t, short.IsNegative(), "%s: shortfall %s", where, short)
	for f, c := range a.Allocations {
		require.Truef(t, c.IsPositive(), "%s: feature %s holds %s", where, f, c)
	}
	require.Truef(t, total.Equal(decimal.NewFromInt(o.total())), "%s: total %s, oracle %d", where, total, o.total())
	require.Truef(t, alloc.Equal(decimal.NewFromInt(o.allocated())), "%s: allocated %s, oracle %d", where, alloc, o.allocated())
	require.Truef(t, avail.Equal(decimal.NewFromInt(o.available())), "%s: available %s, oracle %d", where, avail, o.available())
	require.Truef(t, short.Equal(decimal.NewFromInt(max(0, o.allocated()-o.total()))), "%s: shortfall %s", where, short)
	require.Lenf(t, a.Allocations, len(o.alloc), "%s", where)
	for f, c := range o.alloc {
		require.Truef(t, a.Allocations[f].Equal(decimal.NewFromInt(c)), "%s: feature %s holds %s, oracle %d", where, f, a.Allocations[f], c)
	}
	for id, l := range o.licenses {
		require.Equalf(t, l.status, a.Licenses[id].Status, "%s: status of %s", where, id)
	}
}

// checkNextDue: nothing is due an instant before NextDue, something is due at it, and an account
// without a NextDue has nothing due even a century on.
func checkNextDue(t *testing.T, a ledger.Account, now time.Time, where stepInfo) {
	t.Helper()
	due, ok := ledger.NextDue(a)
	if !ok {
		require.Emptyf(t, ledger.DueEvents(a, now.AddDate(100, 0, 0)), "%s: nothing should ever fall due", where)
		return
	}
	require.Emptyf(t, ledger.DueEvents(a, due.Add(-time.Nanosecond)), "%s: due before NextDue %s", where, due)
	require.NotEmptyf(t, ledger.DueEvents(a, due), "%s: nothing due at NextDue %s", where, due)
}

// TestPoolInvariantsAgainstOracle decides and folds random command sequences and compares every
// outcome and balance with the oracle.
func TestPoolInvariantsAgainstOracle(t *testing.T) {
	t.Parallel()
	runs, steps := 20, 300
	if testing.Short() {
		runs, steps = 8, 150
	}
	var mu sync.Mutex
	seen := map[string]int{}
	t.Run("runs", func(t *testing.T) {
		for run := range runs {
			seed := uint64(20250310 + run)
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				local := runOracle(t, seed, steps)
				mu.Lock()
				defer mu.Unlock()
				for k, v := range local {
					seen[k] += v
				}
			})
		}
	})
	// The generator must reach every outcome the oracle models, or the comparison proves little.
	for _, k := range []string{
		"accepted purchase_license", "accepted activate_license", "accepted allocate_credits", "accepted release_credits",
		string(ledger.CodeAlreadyExists), string(ledger.CodeInvalidArgument), string(ledger.CodeNotFound),
		string(ledger.CodeAlreadyActivated), string(ledger.CodeLicenseExpired), string(ledger.CodeActivationWindowExpired),
		string(ledger.CodeInsufficientCredits), string(ledger.CodeInsufficientAllocation), string(ledger.CodeUnknownFeature),
		"renewed", "expired", "shortfall",
	} {
		assert.Positivef(t, seen[k], "no step reached %q (seen %v)", k, seen)
	}
	t.Logf("outcomes: %v", seen)
}

func runOracle(t *testing.T, seed uint64, steps int) map[string]int {
	seen := map[string]int{}
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	gen := &commandGen{r: r}
	a, o := ledger.NewAccount(acct), newOracle()
	now := t0
	for step := range steps {
		now = now.Add(randomStep(r))
		cmd := gen.next(now)
		where := stepInfo{step: step, now: now, cmd: cmd}

		next := o.clone()
		wantCode := next.apply(cmd, now)
		got, err := rules.Decide(a, cmd, now)
		if wantCode != "" {
			var de *ledger.Error
			require.Truef(t, errors.As(err, &de), "%s: want %s, got %v", where, wantCode, err)
			require.Equalf(t, wantCode, de.Code, "%s: %v", where, err)
			require.Emptyf(t, got, "%s", where)
			seen[string(wantCode)]++
		} else {
			require.NoErrorf(t, err, "%s", where)
			a, o = apply(a, got...), next
			seen["accepted "+cmd.Name()]++
			for _, p := range got {
				switch p.(type) {
				case events.LicenseRenewed:
					seen["renewed"]++
				case events.LicenseExpired:
					seen["expired"]++
				}
			}
		}
		checkPoolInvariants(t, a, o, where)
		checkNextDue(t, a, now, where)
		if a.Shortfall().IsPositive() {
			seen["shortfall"]++
		}
	}
	return seen
}
