// Package prometheus is the built-in metrics plugin: it serves the worker's
// metrics in the Prometheus text format, by default at
// http://127.0.0.1:9464/metrics. Enable it in .nuvom_plugins.toml:
//
//	[[plugin]]
//	name = "prometheus"
//	[plugin.settings]
//	addr = "127.0.0.1:9464"
//
// Job counters and histograms are fed by outcomes after the store committed
// them (not by attempts), through the host's bounded buffer. Queue gauges come
// from the inspector's Stats, refreshed in the background every refresh
// period, so a scrape costs the same whatever the number of queued jobs
// (and makes no call to the store). SQLite and Redis read the statistics
// from counters (milliseconds at a million jobs); where a read is slow (a
// backend that counts every job, as the file backend does), the refresher
// waits ten times as long as the read took, so it uses at most about a
// tenth of a core.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
)

// Settings are read from the plugin's [plugin.settings] table.
type Settings struct {
	// Addr is the listen address of the metrics endpoint; default 127.0.0.1:9464.
	Addr string `toml:"addr"`
	// Path is the URL path of the metrics; default /metrics.
	Path string `toml:"path"`
	// Refresh is how often the queue gauges are read from the backend; default 5s.
	Refresh time.Duration `toml:"refresh"`
}

// Plugin registers the plugin; nuvomgen's generated worker passes it to the worker.
var Plugin = plugin.Registration{
	Name:        "prometheus",
	APIVersion:  plugin.APIVersion,
	Provides:    plugin.ProvidesMiddleware | plugin.ProvidesObserver | plugin.ProvidesHTTP,
	NewSettings: func() any { return &Settings{Addr: "127.0.0.1:9464", Path: "/metrics", Refresh: 5 * time.Second} },
	New: func(s any) (plugin.Plugin, error) {
		st := s.(*Settings)
		if st.Addr == "" {
			return nil, errors.New("addr is empty")
		}
		if _, _, err := net.SplitHostPort(st.Addr); err != nil {
			return nil, fmt.Errorf("addr %q is not host:port (such as 127.0.0.1:9464): %w", st.Addr, err)
		}
		if st.Path == "" || st.Path[0] != '/' {
			return nil, fmt.Errorf("path %q must start with /", st.Path)
		}
		if st.Refresh <= 0 {
			return nil, fmt.Errorf("refresh %s must be positive", st.Refresh)
		}
		return &Metrics{s: *st}, nil
	},
}

// Metrics is the running plugin.
type Metrics struct {
	s   Settings
	reg *prometheus.Registry

	jobs       *prometheus.CounterVec
	retries    *prometheus.CounterVec
	lost       *prometheus.CounterVec
	quarantine *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	pickup     *prometheus.HistogramVec
	inflight   *prometheus.GaugeVec
	ticks      *prometheus.CounterVec
	queues     *queueCollector

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Registry returns the plugin's metrics registry (nil before Start), for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Start registers the metrics, the middleware counting running jobs, the
// outcome observer and the HTTP handler, and starts the queue refresher.
func (m *Metrics) Start(ctx context.Context, h plugin.Host) error {
	m.reg = prometheus.NewRegistry()
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nuvom_jobs_total",
		Help: "Stored attempt outcomes, by task, queue and outcome (succeeded, failed, timed_out, panicked, ...)."},
		[]string{"task", "queue", "outcome"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nuvom_retries_total",
		Help: "Stored outcomes that put the job back to retry."}, []string{"task", "queue"})
	m.lost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nuvom_lost_leases_total",
		Help: "Stored outcomes of attempts whose lease was lost."}, []string{"task", "queue"})
	m.quarantine = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nuvom_quarantined_total",
		Help: "Jobs quarantined because their payload could not be decoded."}, []string{"task", "queue"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "nuvom_job_duration_seconds",
		Help: "Duration of stored attempts.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"task"})
	m.pickup = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "nuvom_pickup_delay_seconds",
		Help: "Time from enqueue to the start of the first attempt.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"queue"})
	m.inflight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nuvom_inflight_jobs",
		Help: "Attempts running on this worker."}, []string{"queue", "task"})
	m.ticks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nuvom_scheduler_ticks_total",
		Help: "Due schedule ticks this worker's scheduler handled, by schedule and outcome (enqueued; duplicate: another scheduler had enqueued it; failed)."},
		[]string{"schedule", "outcome"})
	abandoned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nuvom_abandoned_tasks",
		Help: "Timed-out tasks that ignore their context and still run."}, func() float64 { return float64(h.Abandoned()) })
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "nuvom_up", Help: "1 while the worker runs."})
	up.Set(1)
	goVersion, version := runtime.Version(), "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/nuvom/nuvom" {
				version = d.Version
			}
		}
		if bi.Main.Path == "github.com/nuvom/nuvom" && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "nuvom_worker_info", Help: "The worker's id and versions.",
		ConstLabels: prometheus.Labels{"worker": h.WorkerID(), "version": version, "go_version": goVersion}})
	info.Set(1)
	m.queues = &queueCollector{desc: prometheus.NewDesc("nuvom_queue_size", "Jobs per queue and state, as of the last refresh.", []string{"queue", "state"}, nil)}
	for _, c := range []prometheus.Collector{m.jobs, m.retries, m.lost, m.quarantine, m.duration, m.pickup, m.inflight, m.ticks, abandoned, up, info, m.queues} {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	if err := h.Use(m.middleware); err != nil {
		return err
	}
	if err := h.Subscribe(0, m.observe); err != nil {
		return err
	}
	if err := h.SubscribeTicks(0, m.observeTick); err != nil {
		return err
	}
	if err := h.Handle(m.s.Addr, m.s.Path, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.cancel, m.done = cancel, make(chan struct{})
	done := m.done
	m.mu.Unlock()
	go m.refresh(rctx, h, done)
	return nil
}

// Stop ends the queue refresher. It is safe without Start and twice.
func (m *Metrics) Stop(ctx context.Context) error {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel = nil
	m.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Metrics) middleware(next nuvom.Handler) nuvom.Handler {
	return func(ctx context.Context, job nuvom.JobInfo) error {
		g := m.inflight.WithLabelValues(job.Queue, job.Task)
		g.Inc()
		defer g.Dec()
		return next(ctx, job)
	}
}

func (m *Metrics) observe(ev plugin.Event) {
	job, o := ev.Job, ev.Outcome
	outcome := o.Attempt.Outcome
	if outcome == "" {
		outcome = "unknown"
	}
	m.jobs.WithLabelValues(job.Task, job.Queue, outcome).Inc()
	switch o.State {
	case nuvom.StateRetrying:
		m.retries.WithLabelValues(job.Task, job.Queue).Inc()
	case nuvom.StateQuarantined:
		m.quarantine.WithLabelValues(job.Task, job.Queue).Inc()
	}
	if outcome == nuvom.OutcomeLost {
		m.lost.WithLabelValues(job.Task, job.Queue).Inc()
	}
	a := o.Attempt
	if !a.StartedAt.IsZero() && a.FinishedAt.After(a.StartedAt) {
		m.duration.WithLabelValues(job.Task).Observe(a.FinishedAt.Sub(a.StartedAt).Seconds())
	}
	if job.Attempt == 1 && !job.CreatedAt.IsZero() && job.StartedAt.After(job.CreatedAt) {
		m.pickup.WithLabelValues(job.Queue).Observe(job.StartedAt.Sub(job.CreatedAt).Seconds())
	}
}

func (m *Metrics) observeTick(t plugin.Tick) {
	outcome := t.Outcome
	if outcome == "" {
		outcome = "unknown"
	}
	m.ticks.WithLabelValues(t.Schedule, outcome).Inc()
}

// refresh reads the queue statistics now and then every Refresh, or every
// refreshFactor times as long as the last read took when that is longer,
// until ctx ends.
func (m *Metrics) refresh(ctx context.Context, h plugin.Host, done chan struct{}) {
	defer close(done)
	t := time.NewTimer(0)
	defer t.Stop()
	slow := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		st, err := h.Inspector().Stats(ctx)
		took := time.Since(start)
		if err != nil && ctx.Err() == nil {
			h.Logger().Warn("read queue statistics", "err", err)
		} else if err == nil {
			m.queues.set(st)
		}
		wait := nextRefresh(m.s.Refresh, took)
		if wait > m.s.Refresh && !slow {
			h.Logger().Info("queue statistics are slow to read: refreshing the queue gauges less often",
				"took", took, "refresh", m.s.Refresh, "every", wait)
		}
		slow = wait > m.s.Refresh
		t.Reset(wait)
	}
}

// refreshFactor bounds the share of time the refresher spends reading the
// queue statistics to about 1/refreshFactor of one core, where they are a
// full count of the jobs (the file backend; SQLite before its counters).
const refreshFactor = 10

// nextRefresh is the wait before the next read of the queue statistics:
// period, or refreshFactor times what the last read took when longer.
func nextRefresh(period, took time.Duration) time.Duration {
	return max(period, refreshFactor*took)
}

// queueCollector serves the last queue statistics read: a scrape never
// touches the backend.
type queueCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	last []nuvom.QueueStat
}

func (c *queueCollector) set(st []nuvom.QueueStat) {
	c.mu.Lock()
	c.last = st
	c.mu.Unlock()
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	st := c.last
	c.mu.Unlock()
	for _, s := range st {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.Count), s.Queue, string(s.State))
	}
}
