package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/runtime/backend"
)

// benchJobs returns n fresh queued no-op jobs created at now.
func benchJobs(n int, now time.Time) []*backend.Job {
	out := make([]*backend.Job, n)
	for i := range out {
		out[i] = &backend.Job{ID: ulid.Make().String(), Task: "bench.Noop", Signature: "sha256:0011223344556677",
			Args: []byte{0x90}, Queue: "default", State: backend.StateQueued, MaxAttempts: 3, RunAt: now,
			TimeoutPolicy: backend.TimeoutFail, StoreResult: true, CreatedAt: now}
	}
	return out
}

func openBench(b *testing.B, opts ...Option) *Backend {
	be, err := Open(filepath.Join(b.TempDir(), "bench.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

// BenchmarkEnqueueBatch enqueues batches of 1,000 jobs, one call (one transaction) each.
func BenchmarkEnqueueBatch(b *testing.B) {
	const batch = 1000
	be := openBench(b)
	ctx := context.Background()
	now := time.Now()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		jobs := benchJobs(batch, now)
		b.StartTimer()
		start := time.Now()
		if _, err := be.Enqueue(ctx, jobs); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(b.N*batch)/total.Seconds(), "jobs/s")
}

// BenchmarkEnqueueSingle enqueues one job per call (one transaction each).
func BenchmarkEnqueueSingle(b *testing.B) {
	be := openBench(b)
	ctx := context.Background()
	now := time.Now()
	jobs := benchJobs(b.N, now)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := be.Enqueue(ctx, jobs[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkBurnDown pre-inserts N no-op jobs in batches, then times claiming
// them in batches and completing each batch as succeeded with a small result
// and an attempt record, until none is left. One iteration is one burn-down.
func BenchmarkBurnDown(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for _, sync := range []string{"NORMAL", "FULL"} {
		for _, limit := range []int{100, 500} {
			b.Run(fmt.Sprintf("sync=%s/limit=%d", sync, limit), func(b *testing.B) {
				benchBurnDown(b, n, limit, WithSynchronous(sync))
			})
		}
	}
}

func benchBurnDown(b *testing.B, n, limit int, opts ...Option) {
	benchBurnDownHook(b, n, limit, nil, opts...)
}

func benchBurnDownHook(b *testing.B, n, limit int, hook func(*Backend), opts ...Option) {
	ctx := context.Background()
	result := []byte{0xa2, 'o', 'k'}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		be, err := Open(filepath.Join(b.TempDir(), "burn.db"), opts...)
		if err != nil {
			b.Fatal(err)
		}
		if hook != nil {
			hook(be)
		}
		now := time.Now()
		jobs := benchJobs(n, now)
		for i := 0; i < n; i += 1000 {
			if _, err := be.Enqueue(ctx, jobs[i:min(i+1000, n)]); err != nil {
				b.Fatal(err)
			}
		}
		jobs = nil
		outs := make([]backend.Outcome, 0, limit)
		done := 0
		b.StartTimer()
		start := time.Now()
		for {
			claimed, err := be.Claim(ctx, backend.ClaimRequest{Limit: limit, Worker: "bench", Now: now, LeaseFor: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			if len(claimed) == 0 {
				break
			}
			fin := time.Now()
			outs = outs[:0]
			for _, j := range claimed {
				outs = append(outs, backend.Outcome{Lease: j.Lease(), Queue: j.Queue, Task: j.Task, State: backend.StateSucceeded, FinishedAt: fin,
					Result: result, Attempt: backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt,
						FinishedAt: fin, Worker: "bench", Outcome: backend.OutcomeSucceeded}})
			}
			errs, err := be.Complete(ctx, outs)
			if err == nil {
				err = errors.Join(errs...)
			}
			if err != nil {
				b.Fatal(err)
			}
			done += len(claimed)
		}
		total += time.Since(start)
		b.StopTimer()
		if done != n {
			b.Fatalf("burned down %d jobs, want %d", done, n)
		}
		be.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*n)/total.Seconds(), "jobs/s")
}

// BenchmarkClaimByTask burns down jobs claimed by task, 100 at a time, from N
// jobs of ten tasks on two queues: the jobs of one task ("one-of-10", the
// other 90% stay queued), or of all ten named ("all-10", as a worker that
// runs every task asks), each with the jobs_ready_task index and without it
// (dropped), and, for comparison, by queue with no task filter. The rate
// counts claimed and completed jobs.
func BenchmarkClaimByTask(b *testing.B) {
	n := 50_000
	if testing.Short() {
		n = 10_000
	}
	tasks := make([]string, 10)
	for i := range tasks {
		tasks[i] = fmt.Sprintf("bench.Task%d", i)
	}
	for _, c := range []struct {
		name  string
		tasks []string
		drop  bool
	}{
		{"one-of-10/index", tasks[:1], false},
		{"one-of-10/no-index", tasks[:1], true},
		{"all-10/index", tasks, false},
		{"all-10/no-index", tasks, true},
		{"by-queue", nil, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			var total time.Duration
			claimedAll := 0
			for b.Loop() {
				b.StopTimer()
				be, err := Open(filepath.Join(b.TempDir(), "tasks.db"))
				if err != nil {
					b.Fatal(err)
				}
				if c.drop {
					if _, err := be.write.Exec(`DROP INDEX jobs_ready_task`); err != nil {
						b.Fatal(err)
					}
				}
				now := time.Now()
				jobs := benchJobs(n, now)
				for i, j := range jobs {
					j.Task = tasks[i%len(tasks)]
					j.Queue = []string{"default", "other"}[i/len(tasks)%2]
					j.Priority = i % 3
				}
				for i := 0; i < n; i += 1000 {
					if _, err := be.Enqueue(ctx, jobs[i:min(i+1000, n)]); err != nil {
						b.Fatal(err)
					}
				}
				outs := make([]backend.Outcome, 0, 100)
				b.StartTimer()
				start := time.Now()
				for {
					claimed, err := be.Claim(ctx, backend.ClaimRequest{Tasks: c.tasks, Limit: 100, Worker: "bench", Now: now, LeaseFor: time.Minute})
					if err != nil {
						b.Fatal(err)
					}
					if len(claimed) == 0 {
						break
					}
					outs = outs[:0]
					for _, j := range claimed {
						outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now,
							Attempt: backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt, FinishedAt: now, Worker: "bench", Outcome: backend.OutcomeSucceeded}})
					}
					errs, err := be.Complete(ctx, outs)
					if err == nil {
						err = errors.Join(errs...)
					}
					if err != nil {
						b.Fatal(err)
					}
					claimedAll += len(claimed)
				}
				total += time.Since(start)
				b.StopTimer()
				be.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(claimedAll)/total.Seconds(), "jobs/s")
		})
	}
}
