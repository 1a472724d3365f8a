package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
)

func (a *app) cmdConfig(args []string) int {
	fs := a.flags("config", "", "Prints the effective settings and where each came from: default or environment.\n"+
		"Worker flags (nuvom runworker --concurrency ...) override them for that worker.", "NUVOM_BACKEND=file nuvom config")
	asJSON := fs.Bool("json", false, "print the settings as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return a.fail(err)
	}
	if b := cfg.Backend.Value; b != "" && !config.IsBuiltinBackend(b) {
		// Only a plugin of the module can provide it; without a plugins file
		// every command that opens the store will fail.
		if _, err := os.Stat(filepath.Join(cfg.Root, pluginconf.FileName)); err != nil {
			fmt.Fprintf(a.stderr, "nuvom: warning: NUVOM_BACKEND=%q (%s) is not a built-in backend (%s), and there is no %s whose plugins could provide it\n",
				b, cfg.Backend.Source, strings.Join(config.BuiltinBackends().Names(), ", "), pluginconf.FileName)
		}
	}
	entries := cfg.Entries()
	if *asJSON {
		type entry struct {
			Name   string `json:"name"`
			Value  string `json:"value"`
			Source string `json:"source"`
		}
		out := make([]entry, len(entries))
		for i, e := range entries {
			out[i] = entry{e.Name, e.Value, e.Source}
		}
		return a.printJSON(map[string]any{"module_root": cfg.Root, "settings": out})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "module root\t%s\n", cfg.Root)
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t(%s)\n", e.Name, orDash(e.Value), e.Source)
	}
	return a.flushTable(tw)
}
