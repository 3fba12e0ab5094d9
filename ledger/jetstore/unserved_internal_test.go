package jetstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnservedDirectGetsAreAskedAgain: a direct get that nobody serves yet (a stream just
// created in a starting cluster, its replicas not caught up) is answered 503 by the server. A
// node's first fence read met it and the node's start failed ("direct get answered 503"); it is
// a lagging replica's case, asked again, not an error: the multi_last answer says unserved, and
// a range read makes no progress and gives up only after its retries.
func TestUnservedDirectGetsAreAskedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openOneServer(t, 0)

	a, err := st.multiLast(ctx, "NOT_SERVED", []string{FenceSubject(0)})
	require.NoError(t, err, "503 is not an error")
	assert.True(t, a.unserved)

	err = st.readRangeDirect(ctx, "NOT_SERVED", 1, 1, func(uint64, []byte) { t.Fatal("nothing to read") })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no replica of NOT_SERVED answered", "asked again, then given up")
}
