package nuvom_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

type tenantKey struct{}

// TestMetaFromEnqueueToAttempt: the Meta option and an enqueue hook reading
// the enqueueing ctx set a job's metadata; it is stored (real SQLite) and
// every attempt, a retry included, sees it in middleware, in the attempt's
// context and in the task's JobInfo.
func TestMetaFromEnqueueToAttempt(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var hookSaw []nuvom.JobInfo
	var mu sync.Mutex
	hook := func(ctx context.Context, job nuvom.JobInfo, meta map[string]string) error {
		mu.Lock()
		hookSaw = append(hookSaw, job)
		mu.Unlock()
		if v, ok := ctx.Value(tenantKey{}).(string); ok {
			meta["tenant"] = v
		}
		return nil
	}
	c := nuvom.NewClient(b, nuvom.WithEnqueueHook(hook))
	s := spec("flaky", nuvom.TaskOptions{Retries: 1})
	ctx := context.WithValue(context.Background(), tenantKey{}, "acme")
	res, err := c.Enqueue(ctx, s, []byte{0x90}, nuvom.Meta("request", "r-1"), nuvom.Meta("tenant", "overwritten by the hook"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.Enqueue(context.Background(), s, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"request": "r-1", "tenant": "acme"}
	if len(hookSaw) != 2 || hookSaw[0].ID != res.ID || hookSaw[0].Task != "flaky" || hookSaw[0].Queue != "default" {
		t.Fatalf("the hook saw %+v, want the two jobs, first %s of task flaky on queue default", hookSaw, res.ID)
	}
	if j := getJob(t, b, res.ID); !maps.Equal(j.Meta, want) {
		t.Fatalf("stored meta %v, want %v", j.Meta, want)
	}
	if j := getJob(t, b, plain.ID); j.Meta != nil {
		t.Fatalf("a job enqueued without metadata stored %v", j.Meta)
	}

	type seen struct {
		attempt          int
		mw, ctx, invoked map[string]string
	}
	var got []seen
	var calls int
	mw := func(next nuvom.Handler) nuvom.Handler {
		return func(ctx context.Context, job nuvom.JobInfo) error {
			if job.ID != res.ID {
				return next(ctx, job)
			}
			info, _ := nuvom.JobInfoFromContext(ctx)
			mu.Lock()
			got = append(got, seen{attempt: job.Attempt, mw: maps.Clone(job.Meta), ctx: maps.Clone(info.Meta)})
			mu.Unlock()
			return next(ctx, job)
		}
	}
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		info, _ := nuvom.JobInfoFromContext(ctx)
		if info.ID != res.ID {
			return nil, nil
		}
		mu.Lock()
		got[len(got)-1].invoked = maps.Clone(info.Meta)
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			return nil, errors.New("first attempt fails")
		}
		return nil, nil
	}))
	burst(t, b, reg, nuvom.WorkerOptions{Middleware: []nuvom.Middleware{mw}})
	if j := getJob(t, b, res.ID); j.State != nuvom.StateSucceeded || !maps.Equal(j.Meta, want) {
		t.Fatalf("after the run: state %s, meta %v; want succeeded with %v", j.State, j.Meta, want)
	}
	if len(got) != 2 {
		t.Fatalf("middleware saw %d attempts of the job, want 2", len(got))
	}
	for _, g := range got {
		for where, m := range map[string]map[string]string{"middleware": g.mw, "attempt ctx": g.ctx, "task": g.invoked} {
			if !maps.Equal(m, want) {
				t.Errorf("attempt %d: meta in %s = %v, want %v", g.attempt, where, m, want)
			}
		}
	}
}

// TestEnqueueHookErrorsStoreNothing: a failing hook, an empty key or too
// much metadata fail the whole batch, naming the cause, and store nothing.
func TestEnqueueHookErrorsStoreNothing(t *testing.T) {
	b := newBackend(t)
	s := spec("t", nuvom.TaskOptions{})
	failing := nuvom.WithEnqueueHook(func(_ context.Context, job nuvom.JobInfo, _ map[string]string) error {
		if job.Priority == 9 {
			return errors.New("no tracer")
		}
		return nil
	})
	cases := []struct {
		name string
		c    *nuvom.Client
		opts []nuvom.EnqueueOption
		want string
	}{
		{"hook error", nuvom.NewClient(b, failing), []nuvom.EnqueueOption{nuvom.Priority(9)}, "no tracer"},
		{"empty key", nuvom.NewClient(b), []nuvom.EnqueueOption{nuvom.Meta("", "v")}, "key is empty"},
		{"too big", nuvom.NewClient(b), []nuvom.EnqueueOption{nuvom.Meta("blob", strings.Repeat("x", 17<<10))}, "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.EnqueueBatch(context.Background(), []nuvom.Request{
				{Spec: s, Args: []byte{0x90}},
				{Spec: s, Args: []byte{0x90}, Options: tc.opts},
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "request 1") {
				t.Fatalf("EnqueueBatch error = %v, want one naming request 1 and %q", err, tc.want)
			}
			jobs, err := b.List(context.Background(), nuvom.ListFilter{})
			if err != nil || len(jobs) != 0 {
				t.Fatalf("after the failed batch List = %d jobs, %v; want none", len(jobs), err)
			}
		})
	}
}
