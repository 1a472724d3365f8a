package schedule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// TestOnTick: the dispatcher reports each due tick it handles: enqueued,
// a duplicate (the tick was enqueued by a dispatcher that crashed before
// recording it) and failed (the enqueue was refused), with the schedule,
// task, fire time and job.
func TestOnTick(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	sc := r.create(t, nuvom.Every(time.Minute))
	var got []schedule.TickEvent
	r.d.OnTick = func(e schedule.TickEvent) { got = append(got, e) }

	r.clk.Add(time.Minute)
	crashing := *r.d
	crashing.Store = &failingAdvance{Store: r.store}
	if _, err := crashing.Tick(context.Background()); err == nil {
		t.Fatal("crashing tick: no error")
	}
	r.tick(t) // the same tick again: a duplicate
	jobs := r.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	first := ts("2026-01-01T00:01:00Z")
	want := []schedule.TickEvent{
		{ScheduleID: sc.ID, Task: task.Name, FireTime: first, JobID: jobs[0].ID, Outcome: schedule.TickEnqueued},
		{ScheduleID: sc.ID, Task: task.Name, FireTime: first, JobID: jobs[0].ID, Outcome: schedule.TickDuplicate},
	}
	if len(got) != len(want) {
		t.Fatalf("OnTick got %+v, want %+v", got, want)
	}
	for i := range want {
		if g := got[i]; g.ScheduleID != want[i].ScheduleID || g.Task != want[i].Task || !g.FireTime.Equal(want[i].FireTime) ||
			g.JobID != want[i].JobID || g.Outcome != want[i].Outcome || g.Err != nil {
			t.Errorf("event %d = %+v, want %+v", i, g, want[i])
		}
	}

	// A client that refuses the enqueue: the tick is reported failed.
	got = nil
	refusing := *r.d
	refusing.Client = nuvom.NewClient(r.be, nuvom.WithClock(r.clk.Now), nuvom.WithEnqueueHook(
		func(context.Context, nuvom.JobInfo, map[string]string) error { return errors.New("queue closed") }))
	r.clk.Add(time.Minute)
	if _, err := refusing.Tick(context.Background()); err == nil {
		t.Fatal("refused tick: no error")
	}
	if len(got) != 1 || got[0].Outcome != schedule.TickFailed || got[0].JobID != "" || got[0].Err == nil ||
		!strings.Contains(got[0].Err.Error(), "queue closed") || !got[0].FireTime.Equal(ts("2026-01-01T00:02:00Z")) {
		t.Fatalf("refused tick reported %+v, want one failed event for 00:02 naming the cause", got)
	}
}
