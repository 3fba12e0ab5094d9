package auditread

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/authz"
)

// Defaults of Config for stream infos (StartStreamInfo). A stream info the relay passes on costs
// JetStream well under a millisecond, and the audit tools ask for one per stream they open: two
// at once keep the auditors' share of JetStream's queue of info requests, which the ledger's own
// head reads wait in, at two requests.
const (
	DefaultInfoSlots = 2
	DefaultInfoQueue = 64
)

// infoQueueGroup makes a cluster serve each stream info once.
const infoQueueGroup = "creditledger-auditinfo"

// jsStreamInfo is the JetStream API subject the stream infos are passed on to.
const jsStreamInfo = "$JS.API.STREAM.INFO."

// StartStreamInfo serves the auditors' stream infos: it subscribes on nc, which must be allowed to
// subscribe to authz.SubjectAuditInfo and to publish to the JetStream API (the ledger identity),
// and answers through out. A request asking for subjects_filter is refused (ListsSubjects); any
// other is passed on as it came, at most cfg.Slots at once, and JetStream's answer copied back.
func StartStreamInfo(nc *nats.Conn, out Publisher, cfg Config) (*Relay, error) {
	return start(nc, out, cfg, streamInfos(streamSet(cfg.Streams)))
}

// streamInfos is the kind of the auditors' stream infos.
func streamInfos(streams map[string]bool) kind {
	return kind{
		subject: authz.SubjectAuditInfo, group: infoQueueGroup, target: jsStreamInfo,
		slots: DefaultInfoSlots, queue: DefaultInfoQueue,
		read: func(rest string, body []byte) (bounded, *reply, bool) {
			if !streams[rest] { // "<stream>" only: an auditor import sends nothing else
				return bounded{}, nil, true
			}
			if ListsSubjects(body) {
				return bounded{}, &infoListsSubjects, false
			}
			return bounded{body: body}, nil, false
		},
		busy: infoBusy, tooLong: infoBad,
	}
}

// ListsSubjects says whether JetStream would read body, a STREAM.INFO request, as asking for a
// subjects_filter: the count of messages of every subject it matches, which the server works
// out by walking every matching subject of the stream on each request, one per account on
// LEDGER, while the ledger's own stream infos wait behind it in the same queue. It reads body
// as nats-server 2.15 does (jsStreamInfoRequest, unmarshalRequest): only a body that starts with
// '{' or '[' after JSON white space; value after value into one request, refusing unknown
// fields; where that fails, the whole body again as one value, leniently (the server's non-strict
// mode; its strict mode refuses such a body). A filter either reading sees is reported, so the
// relay never passes on a body JetStream reads as one.
func ListsSubjects(body []byte) bool {
	if !jsonObjectOrArray(body) {
		return false
	}
	var req natsserver.JSApiStreamInfoRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	for {
		err := dec.Decode(&req)
		if errors.Is(err, io.EOF) {
			return req.SubjectsFilter != ""
		}
		if err != nil {
			strict := req.SubjectsFilter != ""
			_ = json.Unmarshal(body, &req)
			return strict || req.SubjectsFilter != ""
		}
	}
}

// jsonObjectOrArray is nats-server's isJSONObjectOrArray: whether the body, past JSON white
// space, starts an object or an array (the server reads the request only then).
func jsonObjectOrArray(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\n\r")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// The relay's own answers to stream infos, as JetStream words a STREAM.INFO answer: a JSON
// document of the stream info response type with an error, no headers.
var (
	infoListsSubjects = infoError(400, uint16(natsserver.JSBadRequestErr),
		"bad request: subjects_filter is not served to auditors (it lists every subject of the stream); read a subject's last message with a direct get")
	infoBusy = infoError(429, uint16(natsserver.JSStreamTooManyRequests), "too many requests")
	infoBad  = infoError(400, uint16(natsserver.JSBadRequestErr), "bad request")
)

// infoError is a STREAM.INFO error answer.
func infoError(code int, errCode uint16, description string) reply {
	// Plain strings and numbers: the encoding cannot fail (wire_test checks the documents).
	b, _ := json.Marshal(natsserver.JSApiStreamInfoResponse{ApiResponse: natsserver.ApiResponse{
		Type: natsserver.JSApiStreamInfoResponseType, Error: &natsserver.ApiError{Code: code, ErrCode: errCode, Description: description}}})
	return reply{data: b}
}
