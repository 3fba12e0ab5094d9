package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoints of the log tree (format 2) are C2SP tlog checkpoints (c2sp.org/tlog-checkpoint)
// in C2SP signed notes (c2sp.org/signed-note), Ed25519-signed with the key name equal to the
// checkpoint's origin line:
//
//	<origin>
//	<tree size>
//	<base64 root hash>
//
//	— <origin> <base64(4-byte key hash || 64-byte Ed25519 signature)>
//
// The first checkpoints the ledger stored (format 1, JSON, see Checkpoint) keep verifying.

// DefaultOrigin is the checkpoints' origin line (and signing key name) when none is configured.
// An operator running several ledgers gives each its own (serve --checkpoint-origin).
const DefaultOrigin = "creditledger/LEDGER"

// LogCheckpoint is a parsed format-2 checkpoint: the signed root of the log tree at Size.
type LogCheckpoint struct {
	Origin string
	// Size is the number of leaves: the checkpoint covers LEDGER positions 1..Size.
	Size uint64
	Root [32]byte
	// KeyHash is the note key hash of the signature the checkpoint was verified with (0 when
	// it was parsed without verifying).
	KeyHash uint32
	// Note is the signed note exactly as stored.
	Note []byte
}

// ErrNotLogCheckpoint means the bytes are not a format-2 checkpoint.
var ErrNotLogCheckpoint = errors.New("not a signed tlog checkpoint")

// noteSigner signs notes with an Ed25519 key under a name, as golang.org/x/mod/sumdb/note
// expects (key hash: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key)).
type noteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s noteSigner) Name() string                    { return s.name }
func (s noteSigner) KeyHash() uint32                 { return s.hash }
func (s noteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// NoteSigner returns the note signer of key under name.
func NoteSigner(name string, key ed25519.PrivateKey) (note.Signer, error) {
	v, err := noteVerifier(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return noteSigner{name: name, hash: v.KeyHash(), key: key}, nil
}

// VerifierKey is the public key in the note verifier format an auditor pins:
// <name>+<hex key hash>+<base64(0x01 || public key)>.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	vk, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", fmt.Errorf("verifier key: %w", err)
	}
	return vk, nil
}

func noteVerifier(name string, pub ed25519.PublicKey) (note.Verifier, error) {
	vk, err := VerifierKey(name, pub)
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vk)
}

// ParseVerifierKey reads a note verifier key and returns its name and Ed25519 public key.
func ParseVerifierKey(vkey string) (string, ed25519.PublicKey, error) {
	vkey = strings.TrimSpace(vkey)
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", nil, fmt.Errorf("verifier key: %w", err)
	}
	name, rest, _ := strings.Cut(vkey, "+")
	_, b64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return "", nil, errors.New("verifier key: not an Ed25519 key")
	}
	return name, ed25519.PublicKey(raw[1:]), nil
}

// keyVerifiers finds the verifier of a note signature among pinned Ed25519 keys: the key whose
// note key hash under the signature's name is the signature's.
type keyVerifiers []ed25519.PublicKey

func (ks keyVerifiers) Verifier(name string, hash uint32) (note.Verifier, error) {
	for _, k := range ks {
		if v, err := noteVerifier(name, k); err == nil && v.KeyHash() == hash {
			return v, nil
		}
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
}

// SignLogCheckpoint signs the tree root at size as a checkpoint of origin.
func SignLogCheckpoint(origin string, size uint64, root [32]byte, key ed25519.PrivateKey) ([]byte, error) {
	s, err := NoteSigner(origin, key)
	if err != nil {
		return nil, err
	}
	text := log.Checkpoint{Origin: origin, Size: size, Hash: root[:]}.Marshal()
	return note.Sign(&note.Note{Text: string(text)}, s)
}

// ParseLogCheckpoint reads a format-2 checkpoint and verifies it: signed by one of keys under
// the name of its origin line. With no keys it only parses (the signature is then unchecked,
// and KeyHash is that of the origin's signature line): callers pin keys.
func ParseLogCheckpoint(data []byte, keys []ed25519.PublicKey) (LogCheckpoint, error) {
	if len(data) == 0 || data[0] == '{' {
		return LogCheckpoint{}, ErrNotLogCheckpoint
	}
	n, err := note.Open(data, keyVerifiers(keys))
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified) && len(keys) == 0:
		n = unverified.Note
	case errors.As(err, &unverified):
		return LogCheckpoint{}, fmt.Errorf("%w: no signature by a pinned key", ErrUntrustedKey)
	case err != nil:
		var bad *note.InvalidSignatureError
		if errors.As(err, &bad) {
			return LogCheckpoint{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return LogCheckpoint{}, fmt.Errorf("%w: %v", ErrNotLogCheckpoint, err)
	}
	var c log.Checkpoint
	rest, err := c.Unmarshal([]byte(n.Text))
	if err != nil {
		return LogCheckpoint{}, fmt.Errorf("%w: %v", ErrNotLogCheckpoint, err)
	}
	if len(c.Hash) != 32 {
		return LogCheckpoint{}, fmt.Errorf("%w: root hash of %d bytes", ErrNotLogCheckpoint, len(c.Hash))
	}
	if len(rest) > 0 {
		return LogCheckpoint{}, fmt.Errorf("%w: unexpected extension lines", ErrNotLogCheckpoint)
	}
	cp := LogCheckpoint{Origin: c.Origin, Size: c.Size, Note: data}
	copy(cp.Root[:], c.Hash)
	sigs := n.Sigs
	if len(keys) == 0 {
		sigs = n.UnverifiedSigs
	}
	for _, s := range sigs {
		if s.Name == c.Origin {
			cp.KeyHash = s.Hash
			return cp, nil
		}
	}
	if len(keys) == 0 {
		return LogCheckpoint{}, fmt.Errorf("%w: no signature under the origin's name %q", ErrNotLogCheckpoint, c.Origin)
	}
	return LogCheckpoint{}, fmt.Errorf("%w: signed by a pinned key, but not under the origin's name %q", ErrUntrustedKey, c.Origin)
}

// KeyHashHex is a note key hash as the verifier key writes it.
func KeyHashHex(h uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], h)
	return fmt.Sprintf("%x", b)
}
