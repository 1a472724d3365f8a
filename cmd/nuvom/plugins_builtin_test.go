package main

import (
	"slices"
	"testing"

	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
)

// The CLI's built-in plugins are exactly those .nuvom_plugins.toml knows by name.
func TestBuiltinPluginsMatchTheSettingsFile(t *testing.T) {
	if got, want := builtinPluginNames(), pluginconf.Builtins(); !slices.Equal(got, want) {
		t.Fatalf("cmd/nuvom built-ins %v, pluginconf built-ins %v", got, want)
	}
}
