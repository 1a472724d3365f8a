package analyzer_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/internal/synth"
)

var (
	synthOnce sync.Once
	synthDir  string
	synthErr  error
)

// synthModule writes the benchmark module once per test binary.
func synthModule(b *testing.B) string {
	synthOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nuvom-synth-")
		if err != nil {
			synthErr = err
			return
		}
		synthDir = dir
		synthErr = synth.Write(dir, synth.Options{})
	})
	if synthErr != nil {
		b.Fatal(synthErr)
	}
	return synthDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if synthDir != "" {
		os.RemoveAll(synthDir)
	}
	os.Exit(code)
}

func BenchmarkAnalyzeSynthetic(b *testing.B) {
	dir := synthModule(b)
	ctx := context.Background()
	cfg := analyzer.Config{Dir: dir, Patterns: []string{"./..."}, Env: goEnv()}
	// Warm the go command's caches once so the figure is a steady-state run.
	res, err := analyzer.Analyze(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Tasks) != 100 || len(res.Packages) != 20 || len(res.Diagnostics) != 0 || res.Stats.FilesScanned != 2000 {
		b.Fatalf("tasks=%d packages=%d diagnostics=%v files=%d", len(res.Tasks), len(res.Packages), res.Diagnostics, res.Stats.FilesScanned)
	}
	var scan time.Duration
	b.ResetTimer()
	for b.Loop() {
		r, err := analyzer.Analyze(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		scan += r.Stats.ScanDuration
	}
	b.ReportMetric(float64(res.Stats.BytesScanned)/1e6, "MB_scanned")
	b.ReportMetric(float64(res.Stats.BytesScanned)*float64(b.N)/1e6/scan.Seconds(), "prefilter_MB/s")
	b.ReportMetric(float64(scan.Milliseconds())/float64(b.N), "discovery_ms/op")
}

func BenchmarkPrefilter(b *testing.B) {
	dir := synthModule(b)
	var files [][]byte
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".go" {
			return err
		}
		data, err := os.ReadFile(p)
		files = append(files, data)
		total += int64(len(data))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, f := range files {
			if analyzer.Prefilter(f) {
				n++
			}
		}
		if n != 20 {
			b.Fatalf("%d candidate files, want 20", n)
		}
	}
}
