package projections_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/projections"
)

// DOMAIN (issue 16): an AWS Marketplace upgrade is its own row of the license list, under the
// license it extends (parent_license_id) with that license's expiry, at every as_of; an AWS
// upgrade stored before upgrades were items (no item_id) stays in the license's own credits.
func TestLicenseListShowsAWSItemsUnderTheirParent(t *testing.T) {
	t.Parallel()
	expires := t0.AddDate(1, 0, 0)
	d := decimal.RequireFromString
	times := []time.Time{t0, t0, t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(3 * time.Hour)}
	recs := records(t, "a", times, []uint64{1, 2, 3, 4, 5},
		events.LicensePurchased{LicenseID: "AWS-1", Source: ledger.SourceAWS, Credits: d("800"), TermMonths: 12, AutoRenew: true, PurchasedAt: t0, ContractStart: t0, ExpiresAt: expires},
		events.LicenseActivated{LicenseID: "AWS-1", ActivatedAt: t0},
		events.ContractUpgraded{LicenseID: "AWS-1", AdditionalCredits: d("100"), ExpiresAt: expires, UpgradedAt: times[2]}, // stored before issue 16
		events.ContractUpgraded{LicenseID: "AWS-1", AdditionalCredits: d("50.5"), ItemID: "AWS-1-u1", ExpiresAt: expires, UpgradedAt: times[3]},
		events.AutoRenewSet{LicenseID: "AWS-1", Enabled: false},
	)

	before, err := projections.FoldAsOf("a", recs, projections.AsOf{Time: times[2]})
	require.NoError(t, err)
	ls := projections.LicensesOf(before.Account, before.Position)
	require.Len(t, ls.Licenses, 1, "as of the stored upgrade there is no item")
	assert.Equal(t, "900", ls.Licenses[0].Credits.String(), "the stored upgrade raised the license's own credits")
	assert.Equal(t, "900", projections.BalanceOf(before.Account, before.Position).TotalCredits.String())

	now, err := projections.FoldAsOf("a", recs, projections.AsOf{})
	require.NoError(t, err)
	ls = projections.LicensesOf(now.Account, now.Position)
	require.Len(t, ls.Licenses, 2)
	parent, item := ls.Licenses[0], ls.Licenses[1]
	assert.Nil(t, parent.ParentLicenseID)
	assert.Equal(t, "900", parent.Credits.String())
	require.NotNil(t, item.ParentLicenseID, "the AWS upgrade is listed under its parent")
	assert.Equal(t, "AWS-1", *item.ParentLicenseID)
	assert.Equal(t, "AWS-1-u1", item.LicenseID)
	assert.Equal(t, ledger.SourceAWS, item.Source)
	assert.Equal(t, ledger.StatusActive, item.Status)
	assert.Equal(t, "50.5", item.Credits.String())
	assert.Equal(t, parent.ExpiresAt, item.ExpiresAt, "the item has its parent's expiry")
	assert.False(t, item.AutoRenew, "auto-renew set on the parent applies to its item")
	assert.Equal(t, "950.5", projections.BalanceOf(now.Account, now.Position).TotalCredits.String())

	// When the term ends (auto-renew off) the item expires with its parent.
	ended, err := projections.FoldAsOf("a", recs, projections.AsOf{Time: expires})
	require.NoError(t, err)
	ls = projections.LicensesOf(ended.Account, ended.Position)
	for _, it := range ls.Licenses {
		assert.Equal(t, ledger.StatusExpired, it.Status, it.LicenseID)
	}
	assert.Equal(t, "0", projections.BalanceOf(ended.Account, ended.Position).TotalCredits.String())
}
