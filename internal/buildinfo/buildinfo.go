package buildinfo

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// version is set at link time:
//
//	go build -ldflags "-X github.com/creditledger/creditledger/internal/buildinfo.version=1.2.0" ./cmd/creditledger
var version string

// Fallback is the version of a build that carries none (a plain `go build` outside a tagged
// module, or `go test`).
const Fallback = "0.0.0-dev"

// semver is the form NATS micro accepts for a service version (SemVer 2.0, no leading v).
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// Info describes the running build.
type Info struct {
	// Version is a SemVer without the leading v: the link-time version, else the main module's
	// version stamped by the go command (`go install ...@v1.2.0`, or a pseudo-version from the
	// VCS), else Fallback.
	Version string
	// Revision is the VCS commit the binary was built from ("" when unknown); Modified says the
	// working tree had uncommitted changes.
	Revision string
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Read returns the running build's Info.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return resolve(version, nil)
	}
	return resolve(version, bi)
}

// Version is Read().Version.
func Version() string { return Read().Version }

// resolve is Read without the process: the link-time version wins over the build info's.
func resolve(linked string, bi *debug.BuildInfo) Info {
	info := Info{Version: Fallback}
	if bi != nil {
		info.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if v := strings.TrimPrefix(bi.Main.Version, "v"); semver.MatchString(v) {
			info.Version = v
		}
	}
	if v := strings.TrimPrefix(linked, "v"); semver.MatchString(v) {
		info.Version = v
	}
	return info
}
