package workercmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/dashboard"
)

// DashboardTokenEnv, when set, is the token the worker's dashboard requires.
const DashboardTokenEnv = "NUVOM_DASHBOARD_TOKEN"

// loadManifest reads the module's manifest for the dashboard and the worker
// registry's manifest hash (the first 12 hex digits of its SHA-256); a
// missing or unreadable manifest gives nil and "".
func loadManifest(root string) (*manifest.Manifest, string) {
	path := filepath.Join(root, manifest.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ""
	}
	sum := sha256.Sum256(data)
	m, err := manifest.Load(path)
	if err != nil {
		return nil, hex.EncodeToString(sum[:6])
	}
	return m, hex.EncodeToString(sum[:6])
}

// startDashboard serves the dashboard on addr for the worker's store until
// the returned stop is called; url is where it listens.
func startDashboard(ctx context.Context, cfg config.Config, b backend.Backend, m *manifest.Manifest, addr string, logger *slog.Logger) (url string, stop func(), err error) {
	o := dashboard.Options{Backend: b, Manifest: m, Token: os.Getenv(DashboardTokenEnv), Logger: logger}
	if err := dashboard.CheckBind(addr, o); err != nil {
		if _, _, perr := net.SplitHostPort(addr); perr != nil {
			return "", nil, fmt.Errorf("--dashboard-addr: %w", err)
		}
		return "", nil, fmt.Errorf("%w (set %s)", err, DashboardTokenEnv)
	}
	st, err := cfg.OpenScheduleStore(ctx)
	if err == nil {
		o.Schedules = st
	} else {
		logger.Warn("dashboard: no schedules", "err", err)
	}
	h, err := dashboard.New(o)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		h.Close()
		if st != nil {
			st.Close()
		}
		return "", nil, fmt.Errorf("dashboard: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("dashboard", "err", err)
		}
	}()
	url = dashboard.URLFor(ln.Addr())
	logger.Info("dashboard serving", "url", url)
	return url, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		h.Close()
		if st != nil {
			st.Close()
		}
	}, nil
}
