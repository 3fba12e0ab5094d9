package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/internal/testledger"
)

// TestDashboardListsAWSItemsUnderTheirParent (issue 16): an AWS Marketplace increase is its own
// row of the license list, right under the license it extends, even when another license was
// bought in between.
func TestDashboardListsAWSItemsUnderTheirParent(t *testing.T) {
	ctx := browser(t)
	l := testledger.Start(t)
	s := newSender(t, l, "aws")
	s.buy("AWS-1", "aws_marketplace", "800", 12, true)
	s.buy("L-sales", "sales", "1000", 12, true)
	s.ok(l.Client.UpgradeContract(context.Background(), commands.UpgradeContract{Meta: s.meta(), LicenseID: "AWS-1", AdditionalCredits: commands.MustAmount("100")}))
	p := page{t: t, ctx: ctx}
	exceptions := consoleErrors(ctx)

	p.do("open the page", 15*time.Second, chromedp.Navigate(l.HTTPURL()+"/?account=aws"))
	p.waitText("#total", "1,900", 10*time.Second)
	lic := p.rows("#licenses-table tbody tr")
	require.Len(t, lic, 3, "%v", lic)
	assert.Equal(t, []string{"AWS-1", "AWS Marketplace", "active", "800"}, lic[0][:4])
	assert.Equal(t, "↳ AWS-1-u1 increase of AWS-1", lic[1][0], "an AWS increase is its own row under its license")
	assert.Equal(t, []string{"AWS Marketplace", "active", "100"}, lic[1][1:4])
	assert.Equal(t, lic[0][6], lic[1][6], "the increase expires with its license")
	assert.Equal(t, "L-sales", lic[2][0])
	assert.Empty(t, exceptions(), "uncaught exceptions in the page")
}
