package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultKeyFileName is the checkpoint signing key's file in the data directory.
const DefaultKeyFileName = "checkpoint-ed25519.key"

// PublicKeyFile is where the public half of keyFile is written: the same name with .pub.
func PublicKeyFile(keyFile string) string {
	return strings.TrimSuffix(keyFile, ".key") + ".pub"
}

// VerifierKeyFile is where the note verifier key of keyFile is written: the same name with .vkey.
func VerifierKeyFile(keyFile string) string {
	return strings.TrimSuffix(keyFile, ".key") + ".vkey"
}

// WriteVerifierKey writes the note verifier key (see VerifierKey) as one line, readable by
// anyone. A file that holds another verifier key is replaced (atomically): the key name is the
// checkpoint origin, so after the origin changes (serve --checkpoint-origin) the old file no
// longer names the signatures, and a verifier that follows docs/FORMAT.md refuses them with it.
func WriteVerifierKey(path, vkey string) error {
	if old, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(old)) == vkey {
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write verifier key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write verifier key: %w", err)
	}
	_, werr := f.WriteString(vkey + "\n")
	err = errors.Join(werr, f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write verifier key %s: %w", path, err)
	}
	return nil
}

// LoadOrCreateKey reads the Ed25519 signing key at path (PKCS#8 PEM). When the file does not
// exist and create is set, it generates a key, writes it with mode 0600 (never overwriting a
// file) and writes the public key beside it (PublicKeyFile, PKIX PEM, mode 0644). A key file that
// group or others can read is refused, as ssh refuses one.
func LoadOrCreateKey(path string, create bool) (key ed25519.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, err = createKey(path)
		return key, err == nil, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint key: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("checkpoint key %s has mode %04o: only its owner may read it (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	key, err = parsePrivateKey(data)
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint key %s: %w", path, err)
	}
	return key, false, nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate checkpoint key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create checkpoint key: %w", err)
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("write checkpoint key %s: %w", path, err)
	}
	if err := WritePublicKey(PublicKeyFile(path), key.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	return key, nil
}

// WritePublicKey writes pub as PKIX PEM, readable by anyone.
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode public key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}

func parsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return key, nil
}

// ReadPublicKey reads a public key an auditor pins: a PKIX PEM file (as the ledger writes
// beside its key), the base64 of the 32 key bytes, or a checkpoint JSON file whose key to trust.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if b, _ := pem.Decode(data); b != nil {
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: a %T, not an Ed25519 key", path, k)
		}
		return pub, nil
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err == nil && len(raw) == ed25519.PublicKeySize {
		return ed25519.PublicKey(raw), nil
	}
	if _, pub, err := ParseVerifierKey(string(data)); err == nil {
		return pub, nil
	}
	if cp, err := ParseCheckpoint(data); err == nil && cp.Prev != "" {
		return cp.Key()
	}
	return nil, fmt.Errorf("public key %s: neither PEM, base64 Ed25519 key, note verifier key nor checkpoint", path)
}

// ReadCheckpointFile reads a checkpoint an auditor saved (audit checkpoint --out), in either
// format: a format-1 JSON checkpoint, or a format-2 signed note (Log set, signature not yet
// verified: see ParseLogCheckpoint).
func ReadCheckpointFile(path string) (StoredCheckpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return StoredCheckpoint{}, fmt.Errorf("checkpoint file: %w", err)
	}
	sc := ParseStoredCheckpoint(0, data)
	if sc.Err != nil {
		return sc, fmt.Errorf("checkpoint file %s: %w", path, sc.Err)
	}
	if sc.Log == nil && (sc.Checkpoint.Prev == "" || sc.Checkpoint.Seq == 0) {
		return sc, fmt.Errorf("checkpoint file %s: not a checkpoint", path)
	}
	sc.Seq = sc.Checkpoint.Seq
	return sc, nil
}
