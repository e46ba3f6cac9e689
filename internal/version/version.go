// Package version holds the version of reachd and reachctl, set at build
// time with -ldflags "-X github.com/reachd/reachd/internal/version.Version=1.2.3"
// (the package build does this), and what the Go toolchain recorded.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is the release; "dev" for a plain go build, in which case String
// adds the VCS revision that the Go toolchain recorded, when there is one.
var Version = "dev"

// String is the version people and `reachctl version` see.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
	}
	return Version
}

// Go is the Go toolchain that built the binary.
func Go() string { return runtime.Version() }
