package main

import (
	"context"
	"fmt"
	"go/token"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/internal/generate"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
	otelplugin "github.com/nuvom/nuvom/runtime/plugins/otel"
	"github.com/nuvom/nuvom/runtime/plugins/prometheus"
)

func (a *app) cmdPluginsList(args []string) int {
	fs := a.flags("plugins list", "", "Lists the plugins the module's worker runs, with their settings, from\n.nuvom_tasks.json alone (go generate records them from .nuvom_plugins.toml):\nit builds nothing.",
		"nuvom plugins list --json")
	asJSON := fs.Bool("json", false, "print the manifest's plugin entries as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	m, err := a.loadManifest()
	if err != nil {
		return a.fail(err)
	}
	if *asJSON {
		if m.Plugins == nil {
			return a.printJSON([]any{})
		}
		return a.printJSON(m.Plugins)
	}
	if len(m.Plugins) == 0 {
		fmt.Fprintf(a.stdout, "no plugins (list them in %s and run go generate ./...); built in: %s\n",
			pluginconf.FileName, strings.Join(builtinPluginNames(), ", "))
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMPORT\tSETTINGS")
	for _, p := range m.Plugins {
		settings := make([]string, len(p.Settings))
		for i, s := range p.Settings {
			settings[i] = s.Key + " " + s.Type
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Import, orDash(strings.Join(settings, ", ")))
	}
	return a.flushTable(tw)
}

func (a *app) cmdPluginsCheck(args []string) int {
	fs := a.flags("plugins check", "", "Checks .nuvom_plugins.toml without running anything: its structure, that each\nplugin package exists and is a plugin, and each plugin's settings against its\nSettings type (a built-in plugin's values too, as its worker would). Problems are printed as .nuvom_plugins.toml:LINE:COL and the\nexit status is 1. ${NAME} references to unset variables are warned about:\nthe worker expands them when it starts.",
		"nuvom plugins check")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	root, err := a.moduleRoot()
	if err != nil {
		return a.fail(err)
	}
	ps, err := generate.LoadPlugins(context.Background(), root, nil)
	if err != nil {
		return a.fail(err)
	}
	if ps.File == nil {
		fmt.Fprintf(a.stdout, "no %s in %s\n", pluginconf.FileName, root)
		return exitOK
	}
	for _, d := range ps.Diagnostics {
		fmt.Fprintln(a.stderr, d.Format(a.wd))
	}
	if analyzer.HasErrors(ps.Diagnostics) {
		return exitFailure
	}
	for _, e := range ps.Parsed.Entries {
		for _, name := range e.EnvRefs() {
			if _, ok := os.LookupEnv(name); !ok {
				p := e.EnvRefPos(name)
				d := analyzer.Diagnostic{Pos: token.Position{Filename: p.File, Line: p.Line, Column: p.Col}, Severity: analyzer.Warning,
					Message: fmt.Sprintf("plugin %s: ${%s} is not set here; the worker needs it when it starts", e.Name, name)}
				fmt.Fprintln(a.stderr, d.Format(a.wd))
			}
		}
	}
	// The built-in plugins are compiled into nuvom: their constructors check
	// the values (a negative refresh, an unknown parent) as the worker would.
	failed := false
	for _, e := range ps.Parsed.Entries {
		if err := checkBuiltinValues(e); err != nil {
			fmt.Fprintln(a.stderr, analyzer.Diagnostic{Pos: token.Position{Filename: err.Pos.File, Line: err.Pos.Line, Column: err.Pos.Col},
				Severity: analyzer.Error, Message: err.Msg}.Format(a.wd))
			failed = true
		}
	}
	if failed {
		return exitFailure
	}
	fmt.Fprintf(a.stdout, "%s: %d plugins OK\n", pluginconf.FileName, len(ps.Plugins))
	return exitOK
}

// checkBuiltinValues decodes the settings of a built-in plugin's entry and
// runs the plugin's constructor on them, without starting it. Entries of
// other plugins, and entries referring to unset variables (warned about
// already), are not checked.
func checkBuiltinValues(e pluginconf.Entry) *pluginconf.Error {
	if !e.Builtin {
		return nil
	}
	for _, name := range e.EnvRefs() {
		if _, ok := os.LookupEnv(name); !ok {
			return nil
		}
	}
	for _, reg := range builtinPlugins() {
		if reg.Name != e.Name || reg.NewSettings == nil {
			continue
		}
		st := reg.NewSettings()
		if err := e.Decode(reg.Name, st, os.LookupEnv); err != nil {
			return &pluginconf.Error{Pos: e.Pos, Msg: err.Error()}
		}
		p, err := reg.New(st)
		if err != nil {
			msg := fmt.Sprintf("plugin %s: %v", reg.Name, err)
			return &pluginconf.Error{Pos: e.BlamePos(msg), Msg: msg}
		}
		_ = p.Stop(context.Background()) // safe without Start, by the contract
	}
	return nil
}

// builtinPlugins are the plugins that ship with Nuvom. Referring to them here
// also makes "go get -tool .../cmd/nuvom" record their dependencies in the
// user's go.sum, so a worker generated with them builds with nothing more.
func builtinPlugins() []plugin.Registration {
	return []plugin.Registration{prometheus.Plugin, otelplugin.Plugin}
}

// builtinPluginNames returns the built-in plugins' names, sorted.
func builtinPluginNames() []string {
	var names []string
	for _, r := range builtinPlugins() {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}
