package ledger_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
)

// DOMAIN: with an active PAYG contract, Cyber Risk Exposure Management cloud account assessment,
// Container Security, File Security and Endpoint Security Advanced Server & Workload Protection
// can be switched to PAYG. "No others." The switch tables prove these four are eligible and two
// others are not; this proves the shipped catalogue has no fifth, and that only workload
// protection is priced by instance size (the per-size and data-center rates).
func TestCatalogueHasExactlyTheFourPaygFeatures(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"cloud_account_assessment":            "Cyber Risk Exposure Management cloud account assessment",
		"container_security":                  "Container Security",
		"file_security":                       "File Security",
		"advanced_server_workload_protection": "Endpoint Security Advanced Server & Workload Protection",
	}
	got := map[string]string{}
	var sized []string
	for _, f := range ledger.DefaultCatalogue().Features() {
		if f.PaygEligible {
			got[f.ID] = f.Name
		}
		if f.InstanceSized {
			sized = append(sized, f.ID)
		}
		assert.NotEmptyf(t, f.Unit, "feature %s has a unit (usage is recorded in it)", f.ID)
	}
	assert.Equal(t, want, got, "the PAYG-eligible features are exactly DOMAIN's four")
	assert.Equal(t, []string{"advanced_server_workload_protection"}, sized, "only workload protection is billed by instance size")
}

// ParseCatalogue is what product edits go through: a feature id that cannot be a subject token,
// or one given twice, is refused rather than silently kept or overwritten.
func TestParseCatalogueRejectsBadCatalogues(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"not json":          `{"features":`,
		"empty id":          `{"features":[{"id":"","name":"x","unit":"hours"}]}`,
		"id with a dot":     `{"features":[{"id":"a.b","name":"x","unit":"hours"}]}`,
		"duplicate feature": `{"features":[{"id":"a","name":"x","unit":"hours"},{"id":"a","name":"y","unit":"gb"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ledger.ParseCatalogue([]byte(doc))
			assert.Error(t, err)
		})
	}
	c, err := ledger.ParseCatalogue([]byte(`{"features":[{"id":"b","name":"B","unit":"gb","payg_eligible":true},{"id":"a","name":"A","unit":"hours"}]}`))
	require.NoError(t, err)
	f, ok := c.Feature("b")
	require.True(t, ok)
	assert.True(t, f.PaygEligible)
	_, ok = c.Feature("c")
	assert.False(t, ok)
	assert.Equal(t, []string{"a", "b"}, []string{c.Features()[0].ID, c.Features()[1].ID}, "listed by id")
}
