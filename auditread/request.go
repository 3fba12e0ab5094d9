package auditread

import (
	"encoding/json"
	"strconv"
	"time"
)

// Limits bound what one auditor direct get may ask for.
type Limits struct {
	// MaxBatch is the most messages one batched get returns (a larger batch is cut to it; the
	// answer's end-of-batch marker then says how many are pending).
	MaxBatch int
	// MaxBytes bounds the bytes one batched get returns (0 or more asks for this): JetStream stops
	// the batch once it has sent this much, with one message more at most.
	MaxBytes int
}

// Defaults of Limits and Config.
const (
	// DefaultMaxBatch is the batch the audit tools ask for.
	DefaultMaxBatch = 1000
	// DefaultMaxBytes is 4 MiB: a batch of the ledger's events fits several times over.
	DefaultMaxBytes = 4 << 20
)

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

// getRequest is the body of a JetStream direct get, as nats-server 2.15 reads it
// (JSApiMsgGetRequest): only these fields are passed on.
type getRequest struct {
	Seq          uint64     `json:"seq,omitempty"`
	LastFor      string     `json:"last_by_subj,omitempty"`
	NextFor      string     `json:"next_by_subj,omitempty"`
	Batch        int        `json:"batch,omitempty"`
	MaxBytes     int        `json:"max_bytes,omitempty"`
	StartTime    *time.Time `json:"start_time,omitempty"`
	MultiLastFor []string   `json:"multi_last,omitempty"`
	UpToSeq      uint64     `json:"up_to_seq,omitempty"`
	UpToTime     *time.Time `json:"up_to_time,omitempty"`
	NoHeaders    bool       `json:"no_hdr,omitempty"`
}

// status is an answer the relay gives itself: a header-only message with a status line, in the
// words JetStream uses for the same fault.
type status struct {
	code int
	text string
}

// The relay's own answers. JetStream answers a direct get it cannot read with 408 and these
// descriptions; busy has no JetStream counterpart (see Config.QueueWait).
var (
	statusEmpty     = status{408, "Empty Request"}
	statusMalformed = status{408, "Malformed Request"}
	statusBad       = status{408, "Bad Request"}
	statusBusy      = status{429, "Too Many Requests"}
)

// header is the status's header block.
func (s status) header() []byte {
	return []byte("NATS/1.0 " + strconv.Itoa(s.code) + " " + s.text + "\r\n\r\n")
}

// reply is the status as the relay's answer: the header block alone.
func (s status) reply() reply { return reply{hdr: s.header()} }

// bounded is a request ready to pass on: its body with the caps applied, and whether its answer
// is a batch (messages, then a status: the end-of-batch marker or an error) or one message.
type bounded struct {
	body  []byte
	batch bool
}

// bound reads a direct get's body and caps it. bySubject is the last-by-subject form
// ($JS.API.DIRECT.GET.<stream>.<subject>), whose body may be empty. A body that does not parse
// as a direct get is refused as JetStream would refuse it; fields JetStream does not know are
// dropped; conflicting fields are left for JetStream to refuse.
func (l Limits) bound(body []byte, bySubject bool) (bounded, *status) {
	if len(body) == 0 {
		if bySubject {
			return bounded{}, nil // the subject says it all
		}
		return bounded{}, &statusEmpty
	}
	var req getRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return bounded{}, &statusMalformed
	}
	if req.Batch < 0 || req.MaxBytes < 0 {
		return bounded{}, &statusBad
	}
	req.Batch = min(req.Batch, l.MaxBatch)
	if len(req.MultiLastFor) > 0 && req.Batch == 0 {
		// Without a batch JetStream answers multi_last with up to 1,024 messages, past the cap
		// (and past what the relay copies: the auditor then never saw the end-of-batch marker).
		req.Batch = l.MaxBatch
	}
	if req.MaxBytes == 0 || req.MaxBytes > l.MaxBytes {
		req.MaxBytes = l.MaxBytes
	}
	out, err := json.Marshal(req)
	if err != nil {
		return bounded{}, &statusMalformed
	}
	return bounded{body: out, batch: req.Batch > 0 || len(req.MultiLastFor) > 0}, nil
}
