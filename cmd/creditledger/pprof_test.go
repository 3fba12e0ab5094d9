package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProfileServer: --pprof-listen serves a live-heap profile and the index, and stops serving on Close.
func TestProfileServer(t *testing.T) {
	t.Parallel()
	p, err := startProfileServer("127.0.0.1:0", zerolog.Nop())
	require.NoError(t, err)
	base := "http://" + p.Addr() + "/debug/pprof/"
	get := func(url string) (int, []byte, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
	code, body, err := get(base + "heap?gc=1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, []byte{0x1f, 0x8b}, body[:2], "a gzipped profile")
	code, body, err = get(base)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "heap")
	p.Close()
	_, _, err = get(base)
	assert.Error(t, err, "served after Close")
}
