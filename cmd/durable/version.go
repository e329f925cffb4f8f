package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func init() {
	register(command{name: "version", summary: "print the module version and the Go version it was built with", run: runVersion})
}

const versionHelp = `Prints the version of the durable module this binary was built from (as
"go install ...@version" records it; "(devel)" for a build from a checkout,
with the VCS revision when known) and the Go version, on stdout.`

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	const name = "version"
	fs := newCommandFlags(name, "", versionHelp, stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErr(stderr, name, "takes no arguments, got %d", len(pos))
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}

// versionLine describes the build: module path and version (with the VCS
// revision of a build from a checkout), Go version, OS and architecture.
func versionLine() string {
	mod, version := "github.com/durablego/durable", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod, version = bi.Main.Path, bi.Main.Version
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
		if rev != "" && (version == "" || version == "(devel)") {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			version = "(devel) " + rev + modified
		}
		if version == "" {
			version = "(devel)"
		}
	}
	return fmt.Sprintf("durable %s %s %s %s/%s", mod, version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
