// Package buildinfo names the release a binary was built from, for the brokers' etcd
// registration and the console, which shows it per broker.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Version is the binary's version: the main module's version when it was built from a
// tagged module, else the VCS revision it was built from (12 hex digits, "-dirty" when the
// work tree had changes), else "devel".
var Version = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
})

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
