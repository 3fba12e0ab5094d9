package jetstore

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionsLearn(t *testing.T) {
	t.Parallel()
	v := newVersions()
	require.NoError(t, v.learn("a", versionAt{version: 3, seq: 10}))
	require.NoError(t, v.learn("a", versionAt{version: 2, seq: 7}), "an older pair is ignored")
	at, _ := v.get("a")
	assert.Equal(t, versionAt{version: 3, seq: 10}, at)
	for _, bad := range []versionAt{{3, 12}, {2, 12}, {4, 9}, {4, 10}} {
		assert.ErrorIs(t, v.learn("a", bad), errVersionOrder, "%+v", bad)
	}
	require.NoError(t, v.learn("a", versionAt{version: 5, seq: 20}))
	at, _ = v.get("a")
	assert.Equal(t, versionAt{version: 5, seq: 20}, at)
}

func TestVersionsAreBounded(t *testing.T) {
	t.Parallel()
	v := newVersions()
	for i := range maxVersions + 100 {
		require.NoError(t, v.learn(strconv.Itoa(i), versionAt{version: 1, seq: uint64(i + 1)}))
	}
	assert.Equal(t, maxVersions, len(v.last))
}
