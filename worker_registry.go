package nuvom

import (
	"context"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// registry keeps this worker's row in the backend's worker registry (where
// the backend has one, see backend.Admin): a beat at start, every
// backend.WorkerBeat after, and the row removed when ctx ends (Run stops).
// A worker that dies stops beating and is shown as gone.
func (w *Worker) registry(ctx context.Context) {
	a, ok := backend.AdminOf(w.b)
	if !ok {
		return
	}
	host, _ := os.Hostname()
	info := backend.WorkerInfo{
		ID: w.o.ID, Host: host, PID: os.Getpid(), Version: w.o.Version, ManifestHash: w.o.ManifestHash,
		Concurrency: w.o.Concurrency, Queues: slices.Clone(w.o.Queues), Every: backend.WorkerBeat,
		StartedAt: w.now(),
	}
	if info.Version == "" {
		info.Version = buildVersion()
	}
	beat := func() {
		info.Running = int(w.running.Load())
		info.LastHeartbeat = w.now()
		if err := a.Heartbeat(ctx, info); err != nil && ctx.Err() == nil {
			w.log.Warn("worker registry heartbeat", "worker", w.o.ID, "err", err)
		}
	}
	beat()
	t := time.NewTicker(backend.WorkerBeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := a.RemoveWorker(rctx, w.o.ID); err != nil {
				w.log.Warn("worker registry: remove row", "worker", w.o.ID, "err", err)
			}
			return
		case <-t.C:
			beat()
		}
	}
}

// buildVersion is the main module's version from the build info, or "".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}
