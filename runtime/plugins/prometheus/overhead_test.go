package prometheus_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/bench"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
	"github.com/nuvom/nuvom/runtime/plugins/prometheus"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// BenchmarkOverheadSQLite burns down no-op jobs on fresh SQLite databases
// with and without the prometheus plugin, alternating, in the same run, and
// reports both medians and their ratio (plugin-overhead-%: the cost of the
// plugin relative to the bare worker). NUVOM_BENCH_JOBS sets the jobs per
// round (default 20000); each b.N iteration runs one round of each.
func BenchmarkOverheadSQLite(b *testing.B) {
	jobs := 20000
	if v, err := strconv.Atoi(os.Getenv("NUVOM_BENCH_JOBS")); err == nil && v > 0 {
		jobs = v
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	round := func(withPlugin bool) float64 {
		be, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		cfg := bench.Config{Backend: be, Jobs: jobs, LatencySamples: -1, Logger: quiet}
		if withPlugin {
			st := prometheus.Plugin.NewSettings().(*prometheus.Settings)
			st.Addr = "127.0.0.1:0"
			set, err := pluginhost.New([]plugin.Registration{prometheus.Plugin}, []any{st})
			if err != nil {
				b.Fatal(err)
			}
			if err := set.Start(context.Background(), pluginhost.Options{Logger: quiet, Inspector: nuvom.NewInspector(be), WorkerID: "bench"}); err != nil {
				b.Fatal(err)
			}
			defer set.Stop(context.Background())
			cfg.Middleware, cfg.OnStored = set.Middleware(), set.Publish
		}
		rep, err := bench.Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		return rep.BurnDownRate()
	}
	var with, without []float64
	for i := 0; i < b.N; i++ {
		without = append(without, round(false))
		with = append(with, round(true))
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	w, wo := med(with), med(without)
	b.ReportMetric(wo, "bare-jobs/s")
	b.ReportMetric(w, "prometheus-jobs/s")
	b.ReportMetric(100*(wo-w)/wo, "plugin-overhead-%")
}
