package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	pseudo := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261128183000-abcdef123456+dirty"}}
	devel := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	cases := []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"nothing known", "", nil, Fallback},
		{"go build in a checkout without VCS stamp", "", devel, Fallback},
		{"go install module@version", "", stamped, "1.4.0"},
		{"pseudo-version from the VCS", "", pseudo, "0.0.0-20261128183000-abcdef123456+dirty"},
		{"ldflags win", "v2.0.1", stamped, "2.0.1"},
		{"ldflags that are not a version are ignored", "latest", stamped, "1.4.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, resolve(c.linked, c.bi).Version)
		})
	}
	info := resolve("", stamped)
	assert.Equal(t, "abc123", info.Revision)
	assert.True(t, info.Modified)
	assert.Equal(t, "go1.26.8", info.GoVersion)
}
