package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/creditledger/creditledger/events"
)

// Names of the checkpoint stream and subjects; they are part of the ledger's public contract.
const (
	// CheckpointStream holds the signed checkpoints, one message each, numbered 1, 2, 3 ...
	CheckpointStream = "LEDGER_CHECKPOINTS"
	// CheckpointSubject is the one subject of CheckpointStream.
	CheckpointSubject = "ledger.checkpoints"
	// CheckpointRequestSubject asks the service for a checkpoint now (NATS request, any body);
	// the reply is the new signed checkpoint, or {"ok":false,"error":{...}}.
	CheckpointRequestSubject = "ledger.audit.checkpoint"
	// signingContext prefixes the signed bytes so a checkpoint signature can never be replayed
	// as a signature over anything else.
	signingContext = "creditledger-checkpoint-v1\n"
)

// Errors of checkpoint verification.
var (
	ErrBadSignature   = errors.New("checkpoint signature invalid")
	ErrUntrustedKey   = errors.New("checkpoint signed by an untrusted key")
	ErrNoCheckpoints  = errors.New("no checkpoint stream")
	ErrRootMismatch   = errors.New("history does not match the checkpoint")
	ErrAccountUnknown = errors.New("account not in the checkpoint")
)

// CheckpointStreamConfig is the checkpoint stream's configuration: like LEDGER, file storage and
// nothing ever deleted, purged or aged out.
func CheckpointStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              CheckpointStream,
		Description:       "creditledger signed checkpoints: Merkle roots of the LEDGER stream, Ed25519-signed",
		Subjects:          []string{CheckpointSubject},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		Discard:           jetstream.DiscardNew,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowDirect:       true,
		Replicas:          max(replicas, 1),
	}
}

// Checkpoint is the ledger's signed statement about the LEDGER stream at one position.
type Checkpoint struct {
	// Seq numbers the checkpoint: it equals its sequence in CheckpointStream.
	Seq uint64 `json:"seq"`
	// Position is the last LEDGER position covered.
	Position uint64 `json:"position"`
	// Accounts is the number of accounts (leaves of the accounts tree).
	Accounts int `json:"accounts"`
	// AccountsRoot is the RFC 6962 Merkle root over every account's chain head at Position,
	// sorted by account id (see LeafHash).
	AccountsRoot string `json:"accounts_root"`
	// LogDigest chains every stored message up to Position in stream order.
	LogDigest string `json:"log_digest"`
	// Prev is the previous checkpoint's Digest (events.ZeroHash for the first).
	Prev string    `json:"prev"`
	Time time.Time `json:"time"`
	// KeyID names the signing key: hex of the first 16 bytes of SHA-256 of the public key.
	KeyID string `json:"key_id"`
	// PublicKey is the signing key (base64). It is informational: an auditor pins keys instead
	// of trusting the one a checkpoint names.
	PublicKey string `json:"public_key"`
	// Signature is the Ed25519 signature (base64) over SigningBytes.
	Signature string `json:"signature"`
}

// signed is the checkpoint without its signature, in a fixed field order.
type signed struct {
	Seq          uint64    `json:"seq"`
	Position     uint64    `json:"position"`
	Accounts     int       `json:"accounts"`
	AccountsRoot string    `json:"accounts_root"`
	LogDigest    string    `json:"log_digest"`
	Prev         string    `json:"prev"`
	Time         time.Time `json:"time"`
	KeyID        string    `json:"key_id"`
	PublicKey    string    `json:"public_key"`
}

// SigningBytes are the bytes the signature covers: a context line, then the checkpoint without
// its signature as compact JSON in field order.
func (c Checkpoint) SigningBytes() []byte {
	b, _ := json.Marshal(signed{c.Seq, c.Position, c.Accounts, c.AccountsRoot, c.LogDigest, c.Prev, c.Time.UTC(), c.KeyID, c.PublicKey})
	return append([]byte(signingContext), b...)
}

// Digest identifies the checkpoint: hex SHA-256 of its SigningBytes. The next checkpoint's Prev.
func (c Checkpoint) Digest() string {
	sum := sha256.Sum256(c.SigningBytes())
	return hex.EncodeToString(sum[:])
}

// KeyID names a public key: hex of the first 16 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// NewCheckpoint signs the chain's state as the checkpoint after prev (nil for the first).
func NewCheckpoint(prev *Checkpoint, c *Chain, at time.Time, key ed25519.PrivateKey) Checkpoint {
	cp := Checkpoint{Seq: 1, Position: c.Position(), Accounts: c.Accounts(), AccountsRoot: c.AccountsRoot(),
		LogDigest: c.LogDigest(), Prev: events.ZeroHash, Time: at.UTC()}
	if prev != nil {
		cp.Seq, cp.Prev = prev.Seq+1, prev.Digest()
	}
	cp.Sign(key)
	return cp
}

// Sign sets the key fields and the signature.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	pub := key.Public().(ed25519.PublicKey)
	c.Time = c.Time.UTC()
	c.KeyID, c.PublicKey = KeyID(pub), base64.StdEncoding.EncodeToString(pub)
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SigningBytes()))
}

// Key is the public key the checkpoint names.
func (c Checkpoint) Key() (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(c.PublicKey)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public_key is not a base64 Ed25519 key", ErrBadSignature)
	}
	return ed25519.PublicKey(b), nil
}

// VerifySignature checks the signature with the key the checkpoint names, and that this key is
// one of trusted (any key when trusted is empty: the caller then pins the key some other way).
func (c Checkpoint) VerifySignature(trusted []ed25519.PublicKey) error {
	pub, err := c.Key()
	if err != nil {
		return err
	}
	if c.KeyID != KeyID(pub) {
		return fmt.Errorf("%w: key_id %s does not name public key %s", ErrBadSignature, c.KeyID, KeyID(pub))
	}
	if len(trusted) > 0 && !containsKey(trusted, pub) {
		return fmt.Errorf("%w: key %s is not a pinned key", ErrUntrustedKey, c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.SigningBytes(), sig) {
		return fmt.Errorf("%w: checkpoint %d is not signed by key %s as it stands", ErrBadSignature, c.Seq, c.KeyID)
	}
	return nil
}

func containsKey(keys []ed25519.PublicKey, k ed25519.PublicKey) bool {
	for _, t := range keys {
		if t.Equal(k) {
			return true
		}
	}
	return false
}

// ParseCheckpoint reads a checkpoint's JSON strictly.
func ParseCheckpoint(data []byte) (Checkpoint, error) {
	var c Checkpoint
	if err := strictUnmarshal(data, &c); err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	return c, nil
}

// StoredCheckpoint is one message of the checkpoint stream: a format-1 checkpoint (JSON,
// Checkpoint) or a format-2 one (a signed tlog checkpoint note, Log).
type StoredCheckpoint struct {
	// Seq is the message's sequence in CheckpointStream.
	Seq        uint64
	Checkpoint Checkpoint
	// Log is set for a format-2 checkpoint, parsed but not yet verified (see VerifyWith).
	Log *LogCheckpoint
	// VerifierKey is the note verifier key the publisher stored beside a format-2 checkpoint
	// (header VerifierKeyHeader): informational, as a format-1 checkpoint's public_key is.
	VerifierKey string
	// Err is set when the message is not a checkpoint.
	Err error
}

// VerifierKeyHeader is the NATS header of a format-2 checkpoint message that carries the
// signer's note verifier key, for auditors who have not pinned one (trust on first use).
const VerifierKeyHeader = "Creditledger-Verifier-Key"

// Position is the last LEDGER position the checkpoint covers.
func (s StoredCheckpoint) Position() uint64 {
	if s.Log != nil {
		return s.Log.Size
	}
	return s.Checkpoint.Position
}

// ParseStoredCheckpoint reads a checkpoint in either format (without verifying a format-2
// signature: see ParseLogCheckpoint).
func ParseStoredCheckpoint(seq uint64, data []byte) StoredCheckpoint {
	sc := StoredCheckpoint{Seq: seq}
	if len(data) > 0 && data[0] == '{' {
		sc.Checkpoint, sc.Err = ParseCheckpoint(data)
		return sc
	}
	lc, err := ParseLogCheckpoint(data, nil)
	if err != nil {
		sc.Err = err
		return sc
	}
	sc.Log = &lc
	return sc
}

// checkpointStream opens the checkpoint stream, or reports ErrNoCheckpoints.
func (s *Source) checkpointStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := openStream(ctx, s.js, CheckpointStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoCheckpoints
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", CheckpointStream, err)
	}
	return st, nil
}

// Checkpoints reads every stored checkpoint in order.
func (s *Source) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	st, err := s.checkpointStream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := streamInfo(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", CheckpointStream, err)
	}
	var out []StoredCheckpoint
	err = consumeRange(ctx, s.js.Conn(), st, CheckpointSubject, info.State.FirstSeq, info.State.LastSeq, func(m Message) error {
		sc := ParseStoredCheckpoint(m.Position, m.Data)
		sc.VerifierKey = m.Header.Get(VerifierKeyHeader)
		out = append(out, sc)
		return nil
	}, nil)
	return out, err
}

// StoredCheckpoint reads checkpoint number seq (0: the latest) in either format.
func (s *Source) StoredCheckpoint(ctx context.Context, seq uint64) (StoredCheckpoint, error) {
	st, err := s.checkpointStream(ctx)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	var m *jetstream.RawStreamMsg
	if seq == 0 {
		m, err = st.GetLastMsgForSubject(ctx, CheckpointSubject)
	} else {
		m, err = st.GetMsg(ctx, seq)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		if seq == 0 {
			return StoredCheckpoint{}, fmt.Errorf("%w: no checkpoint yet", ErrNoCheckpoints)
		}
		return StoredCheckpoint{}, fmt.Errorf("checkpoint %d not found", seq)
	}
	if err != nil {
		return StoredCheckpoint{}, fmt.Errorf("read checkpoint %d: %w", seq, err)
	}
	sc := ParseStoredCheckpoint(m.Sequence, m.Data)
	sc.VerifierKey = m.Header.Get(VerifierKeyHeader)
	if sc.Err == nil && sc.Log == nil && sc.Checkpoint.Seq != m.Sequence {
		sc.Err = fmt.Errorf("checkpoint stored as number %d says it is number %d", m.Sequence, sc.Checkpoint.Seq)
	}
	return sc, sc.Err
}

// Checkpoint reads checkpoint number seq (0: the latest).
func (s *Source) Checkpoint(ctx context.Context, seq uint64) (Checkpoint, error) {
	st, err := s.checkpointStream(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	var m *jetstream.RawStreamMsg
	if seq == 0 {
		m, err = st.GetLastMsgForSubject(ctx, CheckpointSubject)
	} else {
		m, err = st.GetMsg(ctx, seq)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Checkpoint{}, fmt.Errorf("checkpoint %d not found", seq)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %d: %w", seq, err)
	}
	cp, err := ParseCheckpoint(m.Data)
	if err == nil && cp.Seq != m.Sequence {
		err = fmt.Errorf("checkpoint stored as number %d says it is number %d", m.Sequence, cp.Seq)
	}
	return cp, err
}
