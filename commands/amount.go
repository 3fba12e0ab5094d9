package commands

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/shopspring/decimal"
)

// Amount limits of the contract.
var (
	MaxAmount           = decimal.New(1, 12)
	MaxFractionDigits   = int32(4)
	numberLiteral       = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?$`)
	decimalString       = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	maxAmountLiteralLen = 64
)

// Amount is a credit or money amount on the wire: a decimal string ("12.5"), or a JSON number
// whose literal parses exactly. It always marshals as a string.
type Amount struct {
	decimal.Decimal
}

// NewAmount parses a decimal string, for clients building commands.
func NewAmount(s string) (Amount, error) {
	d, err := parseLiteral(s)
	return Amount{d}, err
}

// MustAmount is NewAmount for literals known to be valid (tests, examples).
func MustAmount(s string) Amount {
	a, err := NewAmount(s)
	if err != nil {
		panic(err)
	}
	return a
}

func parseLiteral(s string) (decimal.Decimal, error) {
	if len(s) > maxAmountLiteralLen || !numberLiteral.MatchString(s) {
		return decimal.Decimal{}, fmt.Errorf("%q is not a decimal number", s)
	}
	return decimal.NewFromString(s)
}

// fractionDigits counts the digits after the point as written ("1.50" has 2); -1 when the
// literal has an exponent and only its value can tell.
func fractionDigits(lit string) int {
	if strings.ContainsAny(lit, "eE") {
		return -1
	}
	if i := strings.IndexByte(lit, '.'); i >= 0 {
		return len(lit) - i - 1
	}
	return 0
}

// UnmarshalJSON accepts a decimal string ("12.5", no exponent) or a number literal, never null,
// booleans or objects; at most 4 fractional digits as written.
func (a *Amount) UnmarshalJSON(b []byte) error {
	lit := string(b)
	quoted := len(b) > 0 && b[0] == '"'
	if quoted {
		if err := json.Unmarshal(b, &lit); err != nil {
			return err
		}
		if !decimalString.MatchString(lit) {
			return fmt.Errorf("%q is not a decimal string like \"1500\" or \"12.5\"", lit)
		}
	}
	d, err := parseLiteral(lit)
	if err != nil {
		return err
	}
	if n := fractionDigits(lit); n > int(MaxFractionDigits) {
		return fmt.Errorf("%s has more than %d fractional digits", lit, MaxFractionDigits)
	}
	a.Decimal = d
	return nil
}

// MarshalJSON writes the canonical decimal string.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.Decimal.String()) }

// check enforces the contract: greater than zero, at most 1e12, at most 4 fractional digits.
func (a Amount) check(field string) error {
	switch {
	case !a.IsPositive():
		return fmt.Errorf("%s must be greater than zero", field)
	case a.GreaterThan(MaxAmount):
		return fmt.Errorf("%s must be at most 1000000000000", field)
	case !a.Equal(a.Truncate(MaxFractionDigits)):
		return fmt.Errorf("%s has more than %d fractional digits", field, MaxFractionDigits)
	}
	return nil
}
