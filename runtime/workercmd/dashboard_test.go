package workercmd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// The worker's dashboard serves the worker's store, and refuses an open
// address without a token.
func TestWorkerServesTheDashboard(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/app\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.Open(filepath.Join(dir, "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	logger := slog.New(slog.DiscardHandler)
	if _, _, err := startDashboard(context.Background(), cfg, b, nil, "0.0.0.0:0", logger); err == nil ||
		!strings.Contains(err.Error(), DashboardTokenEnv) {
		t.Fatalf("open address without a token: %v, want a refusal naming %s", err, DashboardTokenEnv)
	}
	// A malformed address is named as such, without the token hint.
	if _, _, err := startDashboard(context.Background(), cfg, b, nil, "8181", logger); err == nil ||
		!strings.Contains(err.Error(), `address "8181" is not host:port`) || strings.Contains(err.Error(), DashboardTokenEnv) {
		t.Fatalf("--dashboard-addr 8181: %v, want it named as not host:port, with no token hint", err)
	}
	url, stop, err := startDashboard(context.Background(), cfg, b, nil, "127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get(url + "queues")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<h1>Queues</h1>") {
		t.Fatalf("GET queues = %d:\n%s", resp.StatusCode, body)
	}
}
