//go:build unix

package sqlite

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleSubscriberCPU measures what an idle subscriber (a worker
// waiting for work) costs at several poll intervals, as the share of one core
// it uses (metric core-%). It is a measurement, not a test: a loaded machine
// changes the figure.
func BenchmarkIdleSubscriberCPU(b *testing.B) {
	for _, interval := range []time.Duration{2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond} {
		b.Run(fmt.Sprint(interval), func(b *testing.B) {
			be := openTest(b, WithPollInterval(interval))
			_, cancel := be.Subscribe()
			defer cancel()
			time.Sleep(100 * time.Millisecond)
			const wall = time.Second
			var used time.Duration
			for b.Loop() {
				start := cpuTime(b)
				time.Sleep(wall)
				used += cpuTime(b) - start
			}
			b.ReportMetric(100*float64(used)/float64(wall)/float64(b.N), "core-%")
		})
	}
}
