package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCountList(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "none", countList(nil))
	assert.Equal(t, "insufficient_credits 120, already_exists 3, not_found 3",
		countList(map[string]int{"not_found": 3, "insufficient_credits": 120, "already_exists": 3}))
}
