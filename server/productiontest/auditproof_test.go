package productiontest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
)

// TestAuditProofRoute: GET /v1/audit/proof is the auditor's (401 without a token, 403 for the
// dashboard) and answers an inclusion proof that verifies under the latest checkpoint.
func TestAuditProofRoute(t *testing.T) {
	t.Parallel()
	srv, _, admin := securedLedger(t)
	a, err := client(t, admin).PurchaseLicense(ctxT(t), purchase("p-1", "acct-proof", "L-proof", "10"))
	require.NoError(t, err)
	msg, err := admin.Request(audit.CheckpointRequestSubject, nil, waitFor)
	require.NoError(t, err)
	cp, err := audit.ParseLogCheckpoint(msg.Data, nil)
	require.NoError(t, err, "%s", msg.Data)
	url := "http://" + srv.HTTPAddr() + "/v1/audit/proof?position=" + itoa(a.Position)

	status, body := httpDo(t, url, "")
	assert.Equal(t, 401, status, body)
	status, body = httpDo(t, url, dashboardToken)
	assert.Equal(t, 403, status, body)
	status, body = httpDo(t, url, auditorToken)
	require.Equal(t, 200, status, body)
	var p audit.EventProof
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	got, err := p.Verify(nil)
	require.NoError(t, err)
	assert.Equal(t, cp.Root, got.Root)
	assert.Equal(t, a.Position, p.Position)
	status, body = httpDo(t, "http://"+srv.HTTPAddr()+"/v1/audit/proof?position=x", auditorToken)
	assert.Equal(t, 400, status, body)
}
