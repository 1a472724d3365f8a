package workercmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
)

// ServeBackendArg is the hidden subcommand with which the nuvom CLI runs the
// worker binary to reach a backend that only the worker has (one a plugin
// provides): the worker opens the configured backend (NUVOM_BACKEND, ...)
// without starting plugins or running jobs, and serves the storage contract
// on its standard input and output (package runtime/backend/remote) until
// its standard input ends. A backend that cannot be opened is one line on
// stderr and exit status 1.
const ServeBackendArg = "nuvom-internal-serve-backend"

// registerBackends makes cfg look NUVOM_BACKEND up among the built-in
// backends and those the plugins provide.
func registerBackends(cfg *config.Config, set *pluginhost.Set) error {
	cfg.Backends = config.BuiltinBackends()
	if set == nil {
		return nil
	}
	for _, pb := range set.Backends() {
		err := cfg.Backends.Register(pb.Name, func(ctx context.Context, c config.Config) (nuvom.Backend, error) {
			return pb.Open(ctx, plugin.BackendEnv{Root: c.Root, Logger: c.Logger})
		})
		if err != nil {
			return fmt.Errorf("plugin %s provides a backend: %w", pb.Name, err)
		}
	}
	return nil
}

// serveBackend is the ServeBackendArg subcommand (args are what follows it).
func serveBackend(ctx context.Context, prog string, pl *Plugins, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "%s: %s takes no arguments\n", prog, ServeBackendArg)
		return ExitUsage
	}
	cfg, err := config.Load(".", os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	plugins, err := loadPlugins(pl)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	if err := registerBackends(&cfg, plugins); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	cfg.Logger = newLogger(stderr, cfg.LogFormat.Value, cfg.LogLevel.Value)
	b, err := cfg.OpenBackend(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitFailure
	}
	defer b.Close()
	if err := remote.Serve(ctx, b, stdin, stdout, remote.Named(cfg.Backend.Value)); err != nil {
		fmt.Fprintf(stderr, "%s: serve backend: %v\n", prog, err)
		return ExitFailure
	}
	return ExitOK
}

// mainServeBackend runs serveBackend for the process. Ctrl-C reaches the
// whole process group: the worker leaves it to the CLI, whose exit ends the
// session (end of standard input) after the call in progress.
// Standard output carries the protocol alone: whatever a backend prints
// there (fmt.Println, say) goes to stderr instead.
func mainServeBackend(pl *Plugins, args []string, prog string) int {
	signal.Ignore(os.Interrupt)
	proto := os.Stdout
	os.Stdout = os.Stderr
	return serveBackend(context.Background(), prog, pl, args, os.Stdin, proto, os.Stderr)
}
