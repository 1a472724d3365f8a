package pluginhost

import (
	"context"
	"fmt"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
)

// Backend is a storage backend a loaded plugin provides, bound to the
// plugin's settings.
type Backend struct {
	// Name is the plugin's name, which NUVOM_BACKEND selects.
	Name string
	reg  plugin.Registration
	set  any
}

// Open opens the backend (the plugin's Backend function, with a panic contained).
func (b Backend) Open(ctx context.Context, env plugin.BackendEnv) (be nuvom.Backend, err error) {
	defer func() {
		if v := recover(); v != nil {
			be, err = nil, fmt.Errorf("plugin %s: opening its backend panicked: %v", b.Name, v)
		}
	}()
	be, err = b.reg.Backend(ctx, b.set, env)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: open backend: %w", b.Name, err)
	}
	if be == nil {
		return nil, fmt.Errorf("plugin %s: its Backend function returned no backend", b.Name)
	}
	return be, nil
}

// Backends returns the backends the plugins provide, in file order.
func (s *Set) Backends() []Backend {
	var out []Backend
	for _, m := range s.members {
		if m.reg.Provides&plugin.ProvidesBackend != 0 {
			out = append(out, Backend{Name: m.reg.Name, reg: m.reg, set: m.settings})
		}
	}
	return out
}
