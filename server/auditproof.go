package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/api"
	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/ledger"
)

// proofTimeout bounds one GET /v1/audit/proof: it reads the stream up to the checkpoint.
const proofTimeout = time.Minute

// proofHandler serves GET /v1/audit/proof?position=P (auditor role): the inclusion proof of
// the event at P under the latest checkpoint, as audit.EventProof (docs/FORMAT.md). Each proof
// rebuilds the log tree from the stream (O(log n) memory, O(n) reading), so proofs are made one
// at a time; a request waits for the one before it, within its own deadline.
type proofHandler struct {
	nc  *nats.Conn
	sem chan struct{}
}

func newProofHandler(nc *nats.Conn) *proofHandler {
	return &proofHandler{nc: nc, sem: make(chan struct{}, 1)}
}

// proofReply is the answer: ok and the proof's fields.
type proofReply struct {
	OK bool `json:"ok"`
	audit.EventProof
}

func (h *proofHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pos, err := strconv.ParseUint(r.URL.Query().Get("position"), 10, 64)
	if err != nil || pos == 0 {
		writeHTTPError(w, http.StatusBadRequest, ledger.CodeInvalidArgument, "position must be a stream position, 1 or more")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), proofTimeout)
	defer cancel()
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-ctx.Done():
		writeHTTPError(w, http.StatusServiceUnavailable, ledger.CodeUnavailable, "another proof is being made; retry")
		return
	}
	p, err := h.prove(ctx, pos)
	if err != nil {
		le := proofError(err)
		writeHTTPError(w, api.HTTPStatus(le.Code), le.Code, le.Message)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(proofReply{OK: true, EventProof: p})
}

func (h *proofHandler) prove(ctx context.Context, pos uint64) (audit.EventProof, error) {
	src, err := audit.NewSource(ctx, h.nc)
	if err != nil {
		return audit.EventProof{}, err
	}
	// The signature is not checked here: the auditor checks it with the key they pinned.
	return audit.BuildEventProof(ctx, src, pos, 0, nil)
}

// proofError maps a proof failure to a wire error.
func proofError(err error) *ledger.Error {
	switch {
	case errors.Is(err, audit.ErrNotCovered), errors.Is(err, audit.ErrNoCheckpoints), errors.Is(err, audit.ErrNoLogCheckpoint):
		return &ledger.Error{Code: ledger.CodeNotFound, Message: err.Error() + " (ask for a checkpoint: ledger.audit.checkpoint)"}
	case errors.Is(err, audit.ErrRootMismatch):
		return &ledger.Error{Code: ledger.CodeInternal, Message: err.Error()}
	default:
		return &ledger.Error{Code: ledger.CodeUnavailable, Message: err.Error()}
	}
}
