package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAWSUpgradeItems (issue 16): an AWS Marketplace upgrade is its own item of the license
// list, as on Azure, with a derived or a chosen item id that is unique across accounts, the
// parent's expiry, and no Azure limits; as_of shows the list before and after it.
func TestAWSUpgradeItems(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "aws-items")
	a.ok("purchase_license", m{"license_id": "awsi-L", "source": "aws_marketplace", "credits": "800"})
	a.ok("activate_license", m{"license_id": "awsi-L"})
	beforeUpgrade := l.Clock.Now()
	l.Clock.Advance(time.Hour)

	r := a.ok("upgrade_contract", m{"license_id": "awsi-L", "additional_credits": "100"})
	ls := getLicenses(t, l, a.id, r.Position)
	require.Equal(t, []string{"awsi-L", "awsi-L-u1"}, licenseIDs(ls), "the upgrade is an item with a derived id")
	parent, _ := ls.byID("awsi-L")
	assert.Equal(t, "800", parent.Credits, "the parent keeps its own credits")
	item, _ := ls.byID("awsi-L-u1")
	require.NotNil(t, item.ParentLicenseID)
	assert.Equal(t, "awsi-L", *item.ParentLicenseID)
	assert.Equal(t, "aws_marketplace", item.Source)
	assert.Equal(t, "100", item.Credits)
	assert.Equal(t, "active", item.Status)
	assert.Equal(t, parent.ExpiresAt, item.ExpiresAt, "the item has its parent's expires_at")

	// A chosen id; fractions and more than 1,000,000 credits are fine on AWS (Azure's limits).
	a.ok("upgrade_contract", m{"license_id": "awsi-L", "additional_credits": "0.5", "item_id": "awsi-extra"})
	r = a.ok("upgrade_contract", m{"license_id": "awsi-L", "additional_credits": "1000000"})
	ls = getLicenses(t, l, a.id, r.Position)
	assert.Equal(t, []string{"awsi-L", "awsi-L-u1", "awsi-extra", "awsi-L-u2"}, licenseIDs(ls))
	assertDec(t, "1000900.5", getBalance(t, l, a.id, r.Position).TotalCredits)

	a.reject("upgrade_contract", m{"license_id": "awsi-L", "additional_credits": "1", "item_id": "awsi-extra"}, "already_exists")
	a.reject("upgrade_contract", m{"license_id": "awsi-L-u1", "additional_credits": "1"}, "invalid_argument")

	// Item ids are unique across accounts, like license ids.
	b := newAccount(t, l, "aws-items-b")
	b.reject("purchase_license", m{"license_id": "awsi-L-u1", "source": "sales", "credits": "1"}, "already_exists")
	b.ok("purchase_license", m{"license_id": "awsi-B", "source": "aws_marketplace", "credits": "5"})
	b.ok("activate_license", m{"license_id": "awsi-B"})
	b.reject("upgrade_contract", m{"license_id": "awsi-B", "additional_credits": "1", "item_id": "awsi-extra"}, "already_exists")

	// as_of: before the upgrades the license list has one row.
	status, body := httpGet(t, l.HTTPURL()+"/v1/accounts/"+a.id+"/licenses?as_of="+url.QueryEscape(beforeUpgrade.Format(time.RFC3339Nano)))
	require.Equal(t, http.StatusOK, status, "%s", body)
	var past licenses
	require.NoError(t, json.Unmarshal(body, &past))
	assert.Equal(t, []string{"awsi-L"}, licenseIDs(past))
}

// TestAWSDerivedItemIDDoesNotCollideAcrossAccounts: the id derived for an AWS upgrade skips an
// id another account holds, as it does on Azure.
func TestAWSDerivedItemIDDoesNotCollideAcrossAccounts(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	other := newAccount(t, l, "awsz-other")
	other.ok("purchase_license", m{"license_id": "awsz-L-u1", "source": "sales", "credits": "1"})
	a := newAccount(t, l, "awsz")
	a.ok("purchase_license", m{"license_id": "awsz-L", "source": "aws_marketplace", "credits": "10"})
	a.ok("activate_license", m{"license_id": "awsz-L"})
	r := a.ok("upgrade_contract", m{"license_id": "awsz-L", "additional_credits": "5"})
	ls := getLicenses(t, l, a.id, r.Position)
	require.Len(t, ls.Licenses, 2)
	assert.Equal(t, "awsz-L-u2", ls.Licenses[1].LicenseID)
}
