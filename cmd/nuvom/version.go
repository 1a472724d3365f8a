package main

import (
	"fmt"
	"runtime/debug"

	"github.com/nuvom/nuvom/manifest"
)

func (a *app) cmdVersion(args []string) int {
	fs := a.flags("version", "", "Prints nuvom's module version, the Go version it was built with and the manifest format it reads.", "nuvom version")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	version, goVersion := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	fmt.Fprintf(a.stdout, "nuvom %s (%s, manifest format %s)\n", version, goVersion, manifest.Version)
	return exitOK
}
