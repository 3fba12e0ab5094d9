package ledger

// MaxIDLen bounds account, license, contract, item and feature ids.
const MaxIDLen = 64

// ValidID reports whether s is 1-64 characters of A-Za-z0-9_-. Ids end up in NATS subjects, so
// '.', '*', '>' and whitespace must never get through.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
