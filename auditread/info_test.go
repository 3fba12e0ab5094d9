package auditread

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListsSubjectsReadsAsJetStream: the relay sees a subjects_filter wherever nats-server 2.15
// would read one (productiontest.TestAuditorStreamInfoAnswersAsJetStream asks the server itself),
// and nowhere else, so a plain stream info is passed on as it came.
func TestListsSubjectsReadsAsJetStream(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]bool{
		``:                           false, // plain: the audit tools, nats.go's js.Stream and Stream.Info
		`{}`:                         false,
		" \r\n\t{}":                  false,
		`{"deleted_details":true}`:   false,
		`{"offset":5}`:               false,
		`{"subjects_filter":""}`:     false,
		`null`:                       false, // not an object: the server does not read it
		`x{"subjects_filter":">"}`:   false,
		`{"subjects_filter":">"}`:    true,
		` {"subjects_filter":"a.b"}`: true, // one subject is refused too: one rule
		`{"SUBJECTS_FILTER":">"}`:    true, // encoding/json matches names without case
		`{"subjects_filter":""}{"subjects_filter":">"}`: true, // value after value, the last wins
		`{"subjects_filter":">"}{"subjects_filter":""}`: false,
		`{"subjects_filter":">","unknown":1}`:           true,  // the server's non-strict fallback reads it
		`{"subjects_filter":">"`:                        false, // not JSON: refused by the server
		`[{"subjects_filter":">"}]`:                     false, // an array: refused by the server
	} {
		assert.Equal(t, want, ListsSubjects([]byte(body)), "%q", body)
	}
}

// TestStreamInfoAnswersAreJetStreams: the relay's own answers to a stream info are JetStream's
// error documents (nats.go reads them as an APIError with the code).
func TestStreamInfoAnswersAreJetStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r             reply
		code, errCode int
	}{{infoListsSubjects, 400, 10003}, {infoBusy, 429, 10167}, {infoBad, 400, 10003}} {
		assert.Nil(t, tc.r.hdr, "a STREAM.INFO answer has no headers")
		var doc struct {
			Type  string `json:"type"`
			Error struct {
				Code        int    `json:"code"`
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(tc.r.data, &doc))
		assert.Equal(t, "io.nats.jetstream.api.v1.stream_info_response", doc.Type)
		assert.Equal(t, tc.code, doc.Error.Code)
		assert.Equal(t, tc.errCode, doc.Error.ErrCode)
		assert.NotEmpty(t, doc.Error.Description)
	}
}

// Whatever an auditor sends, a body the relay passes on (ListsSubjects false) is one nats-server
// reads no subjects filter from: the server reads a request body with encoding/json when it
// starts an object or an array, as jsonObjectOrArray says.
func FuzzListsSubjectsMissesNoFilter(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"subjects_filter":">"}`, `{"SUBJECTS_FILTER":"a.>"}`,
		`{"subjects_filter":""}{"subjects_filter":">"}`, `[1]`, ` {"offset":1,"subjects_filter":"x"`, `{"deleted_details":true}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if ListsSubjects(body) || !jsonObjectOrArray(body) {
			return
		}
		var req struct {
			SubjectsFilter string `json:"subjects_filter"`
		}
		_ = json.Unmarshal(body, &req)
		if req.SubjectsFilter != "" {
			t.Fatalf("passed on %q, which the server reads as subjects_filter %q", body, req.SubjectsFilter)
		}
	})
}
