package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A position that is not a stream position (missing, zero, negative, signed, fractional, beyond
// uint64, not a number) is refused with 400 invalid_argument before anything is read: the
// handler has no NATS connection here, and would panic if it got that far.
func TestProofHandlerRefusesBadPositions(t *testing.T) {
	t.Parallel()
	h := newProofHandler(nil)
	for _, q := range []string{"", "?position=", "?position=0", "?position=-1", "?position=+1", "?position=1.5",
		"?position=0x10", "?position=%201", "?position=18446744073709551616", "?position=abc", "?pos=1"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/audit/proof"+q, nil))
		require.Equal(t, http.StatusBadRequest, rec.Code, q)
		var body struct {
			OK    bool `json:"ok"`
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), q)
		assert.False(t, body.OK, q)
		assert.Equal(t, "invalid_argument", body.Error.Code, q)
	}
}
