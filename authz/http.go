package authz

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// TokenRole returns the role of an HTTP bearer token. Every configured token is compared, in
// constant time, against the SHA-256 of the one presented, so neither timing nor an early exit
// tells an attacker how close a guess came.
func (c *Config) TokenRole(token string) (Role, bool) {
	if c == nil || token == "" {
		return "", false
	}
	got := sha256.Sum256([]byte(token))
	var role Role
	found := 0
	for _, t := range c.HTTP.Tokens {
		want := sha256.Sum256([]byte(t.Token))
		if t.TokenSHA256 != "" {
			b, err := hex.DecodeString(t.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				continue
			}
			copy(want[:], b)
		}
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 && found == 0 {
			role, found = t.Role, 1
		}
	}
	return role, found == 1
}

// HTTPAuth reports whether any HTTP token is configured; without one the HTTP API is open.
func (c *Config) HTTPAuth() bool { return c != nil && len(c.HTTP.Tokens) > 0 }
