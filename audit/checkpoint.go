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
	"sort"
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

// StoredCheckpoint is one message of the checkpoint stream.
type StoredCheckpoint struct {
	// Seq is the message's sequence in CheckpointStream.
	Seq        uint64
	Checkpoint Checkpoint
	// Err is set when the message is not a checkpoint.
	Err error
}

// checkpointStream opens the checkpoint stream, or reports ErrNoCheckpoints.
func (s *Source) checkpointStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, CheckpointStream)
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
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", CheckpointStream, err)
	}
	var out []StoredCheckpoint
	err = consumeRange(ctx, st, CheckpointSubject, info.State.FirstSeq, info.State.LastSeq, func(m Message) error {
		cp, err := ParseCheckpoint(m.Data)
		out = append(out, StoredCheckpoint{Seq: m.Position, Checkpoint: cp, Err: err})
		return nil
	}, nil)
	return out, err
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

// checkpointCheck checks the stored checkpoints (and a trusted one) against a verification's
// chain as the scan passes their positions.
type checkpointCheck struct {
	rep     *Report
	fs      *findings
	pending []pendingCheckpoint
}

type pendingCheckpoint struct {
	cp      Checkpoint
	trusted bool
	// since is the position of the checkpoint before it: the history up to since was
	// confirmed by an earlier one, so a difference lies after it.
	since uint64
}

func newCheckpointCheck(ctx context.Context, src *Source, opts VerifyOptions, rep *Report, fs *findings) (*checkpointCheck, error) {
	cc := &checkpointCheck{rep: rep, fs: fs}
	stored, err := src.Checkpoints(ctx)
	if errors.Is(err, ErrNoCheckpoints) {
		rep.Warnings = append(rep.Warnings, "no "+CheckpointStream+" stream: there are no signed checkpoints to check")
	} else if err != nil {
		return nil, err
	}
	keys := opts.PublicKeys
	rep.KeyPinned = len(keys) > 0 || opts.Trusted != nil
	if opts.Trusted != nil {
		cc.addTrusted(*opts.Trusted, keys, stored)
		if len(keys) == 0 {
			if k, err := opts.Trusted.Key(); err == nil {
				keys = []ed25519.PublicKey{k}
			}
		}
	}
	if len(keys) == 0 {
		for _, s := range stored {
			if k, err := s.Checkpoint.Key(); s.Err == nil && err == nil {
				keys = []ed25519.PublicKey{k}
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("checkpoint key not pinned: trusting key %s of the first checkpoint; pass --public-key to pin it", KeyID(k)))
				break
			}
		}
	}
	cc.addStored(stored, keys)
	sort.SliceStable(cc.pending, func(i, j int) bool { return cc.pending[i].cp.Position < cc.pending[j].cp.Position })
	return cc, nil
}

func (cc *checkpointCheck) addTrusted(t Checkpoint, keys []ed25519.PublicKey, stored []StoredCheckpoint) {
	cc.rep.Trusted = t.Seq
	if err := t.VerifySignature(keys); err != nil {
		cc.fs.add(Finding{Kind: KindCheckpointSignature, Position: t.Position, Checkpoint: t.Seq, Reason: "trusted checkpoint: " + err.Error()})
		return
	}
	cc.pending = append(cc.pending, pendingCheckpoint{cp: t, trusted: true})
	for _, s := range stored {
		if s.Seq == t.Seq {
			if s.Err != nil || s.Checkpoint.Digest() != t.Digest() || s.Checkpoint.Signature != t.Signature {
				cc.fs.add(Finding{Kind: KindCheckpointChain, Position: t.Position, Checkpoint: t.Seq,
					Reason: fmt.Sprintf("stored checkpoint %d differs from the trusted copy", t.Seq)})
			}
			return
		}
	}
	cc.fs.add(Finding{Kind: KindCheckpointChain, Position: t.Position, Checkpoint: t.Seq,
		Reason: fmt.Sprintf("trusted checkpoint %d is missing from the %s stream", t.Seq, CheckpointStream)})
}

// addStored checks numbering, links and signatures, and queues the sound ones for their roots.
func (cc *checkpointCheck) addStored(stored []StoredCheckpoint, keys []ed25519.PublicKey) {
	prev, prevPos, want := events.ZeroHash, uint64(0), uint64(1)
	seen := map[string]bool{}
	for _, s := range stored {
		cp := s.Checkpoint
		f := Finding{Kind: KindCheckpointChain, Position: cp.Position, Checkpoint: s.Seq}
		switch {
		case s.Err != nil:
			f.Kind, f.Position, f.Reason = KindCheckpointMalformed, prevPos, s.Err.Error()
		case s.Seq != want:
			f.Reason = fmt.Sprintf("checkpoints %d to %d are missing from the %s stream", want, s.Seq-1, CheckpointStream)
		case cp.Seq != s.Seq:
			f.Reason = fmt.Sprintf("checkpoint stored as number %d says it is number %d", s.Seq, cp.Seq)
		case cp.Prev != prev:
			f.Reason = fmt.Sprintf("prev %s does not match the digest %s of checkpoint %d", cp.Prev, prev, s.Seq-1)
		case cp.Position < prevPos:
			f.Reason = fmt.Sprintf("position %d goes back from %d", cp.Position, prevPos)
		}
		want = s.Seq + 1
		if f.Reason != "" {
			cc.fs.add(f)
			prev, prevPos = cp.Digest(), max(prevPos, cp.Position)
			continue
		}
		prev = cp.Digest()
		if err := cp.VerifySignature(keys); err != nil {
			cc.fs.add(Finding{Kind: KindCheckpointSignature, Position: cp.Position, Checkpoint: s.Seq, Reason: err.Error()})
			continue
		}
		if !seen[cp.KeyID] {
			seen[cp.KeyID] = true
			cc.rep.KeyIDs = append(cc.rep.KeyIDs, cp.KeyID)
		}
		cc.pending = append(cc.pending, pendingCheckpoint{cp: cp, since: prevPos})
		prevPos = cp.Position
	}
}

// before checks every queued checkpoint whose position lies before position p; the chain then
// holds exactly the history up to that checkpoint.
func (cc *checkpointCheck) before(p uint64, c *Chain) {
	for len(cc.pending) > 0 && cc.pending[0].cp.Position < p {
		cc.check(cc.pending[0], c)
		cc.pending = cc.pending[1:]
	}
}

// finish checks the rest: those within the stream, and those beyond its end (truncation).
func (cc *checkpointCheck) finish(c *Chain) {
	for _, pc := range cc.pending {
		if pc.cp.Position <= c.Position() {
			cc.check(pc, c)
			continue
		}
		cc.fs.add(Finding{Kind: KindTruncated, Position: c.Position() + 1, Checkpoint: pc.cp.Seq,
			Reason: fmt.Sprintf("checkpoint %d covers positions up to %d but the stream ends at %d: events were removed from the end",
				pc.cp.Seq, pc.cp.Position, c.Position())})
	}
	cc.pending = nil
}

func (cc *checkpointCheck) check(pc pendingCheckpoint, c *Chain) {
	cp := pc.cp
	var diff []string
	if got := c.AccountsRoot(); got != cp.AccountsRoot {
		diff = append(diff, fmt.Sprintf("accounts root %s, signed %s", got, cp.AccountsRoot))
	}
	if got := c.LogDigest(); got != cp.LogDigest {
		diff = append(diff, fmt.Sprintf("log digest %s, signed %s", got, cp.LogDigest))
	}
	if c.Accounts() != cp.Accounts {
		diff = append(diff, fmt.Sprintf("%d accounts, signed %d", c.Accounts(), cp.Accounts))
	}
	if len(diff) == 0 {
		cc.rep.Checkpoints++
		return
	}
	what := "checkpoint"
	if pc.trusted {
		what = "trusted checkpoint"
	}
	cc.fs.add(Finding{Kind: KindCheckpointMismatch, Position: cp.Position, Checkpoint: cp.Seq,
		Reason: fmt.Sprintf("the history up to position %d is not what %s %d signed (events after position %d were altered, removed, inserted or re-ordered): %v",
			cp.Position, what, cp.Seq, pc.since, diff)})
}
