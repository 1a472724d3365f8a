package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/file"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

// Flow-control tasks: each appends "<job id> <pid> <start ns> <end ns>\n" to
// the flow log (the executions log's path plus ".flow") when it returns.
const (
	concTask = "reliability.conc" // max_concurrency=5; sleeps 30 ms
	rateTask = "reliability.rate" // rate=10/s
)

func flowDefs(execLog string) []nuvom.TaskDef {
	pid := strconv.Itoa(os.Getpid())
	logf, err := openExecLog(execLog + ".flow")
	if err != nil {
		return nil // the worker then has no such tasks, and the test fails waiting
	}
	invoke := func(sleep time.Duration) nuvom.InvokeFunc {
		return func(ctx context.Context, _ []byte) ([]byte, error) {
			start := time.Now()
			if sleep > 0 {
				t := time.NewTimer(sleep)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				}
			}
			info, _ := nuvom.JobInfoFromContext(ctx)
			line := fmt.Sprintf("%s %s %d %d\n", info.ID, pid, start.UnixNano(), time.Now().UnixNano())
			if _, err := logf.Write([]byte(line)); err != nil {
				return nil, err
			}
			return nuvomimpl.EncodeResult(0)
		}
	}
	return []nuvom.TaskDef{
		{TaskSpec: nuvom.TaskSpec{Name: concTask, Signature: "conc", Options: nuvom.TaskOptions{Queue: "default", MaxConcurrency: 5}},
			Invoke: invoke(30 * time.Millisecond)},
		{TaskSpec: nuvom.TaskSpec{Name: rateTask, Signature: "rate", Options: nuvom.TaskOptions{Queue: "default",
			Rate: nuvom.Rate{N: 10, Per: time.Second}}}, Invoke: invoke(0)},
	}
}

type flowRun struct {
	job        string
	pid        string
	start, end int64
}

func readFlowLog(t *testing.T, path string) []flowRun {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read flow log: %v", err)
	}
	var out []flowRun
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("flow log line %q is malformed", line)
		}
		s, err1 := strconv.ParseInt(f[2], 10, 64)
		e, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("flow log line %q is malformed", line)
		}
		out = append(out, flowRun{f[0], f[1], s, e})
	}
	return out
}

// TestFlowControlSQLite: three worker processes (8 slots each) on one SQLite
// file never run more than 5 jobs of a task declared max_concurrency=5 at
// once (by the start and end times the task records), and never start more
// than 10 jobs of a task declared rate=10/s in any one-second window (by the
// start times the store records, StartedAt).
func TestFlowControlSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	flowControlTest(t, dir, "sqlite", db, openSQLite(t, db))
}

// TestFlowControlFile is TestFlowControlSQLite on the file backend.
func TestFlowControlFile(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes")
	}
	dir := t.TempDir()
	q := filepath.Join(dir, "queue")
	b, err := file.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	flowControlTest(t, dir, "file", q, b)
}

func flowControlTest(t *testing.T, dir, kind, path string, b nuvom.Backend) {
	const nConc, nRate = 80, 35
	var reqs []nuvom.Request
	for range nConc {
		reqs = append(reqs, nuvom.Request{Spec: nuvom.TaskSpec{Name: concTask, Signature: "conc"}, Args: []byte{0x90}})
	}
	for range nRate {
		reqs = append(reqs, nuvom.Request{Spec: nuvom.TaskSpec{Name: rateTask, Signature: "rate"}, Args: []byte{0x90}})
	}
	res, err := nuvom.NewClient(b).EnqueueBatch(t.Context(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := workerConfig{Backend: kind, Path: path, ExecLog: filepath.Join(dir, "exec.log"), Concurrency: 8,
		LeaseFor: time.Minute, Poll: 5 * time.Millisecond}
	var procs []*proc
	for i := range 3 {
		procs = append(procs, startWorker(t, fmt.Sprintf("worker%d", i), "worker", cfg))
	}
	waitFor(t, 5*time.Minute, "every job to finish", allFinal(b, nConc+nRate))
	for _, p := range procs {
		p.stop()
	}
	for _, p := range procs {
		p.mustExitOK(time.Minute)
	}
	runs := readFlowLog(t, cfg.ExecLog+".flow")
	ids := map[string]string{}
	for i, r := range res {
		ids[r.ID] = reqs[i].Spec.Name
	}
	// Concurrency: sweep the [start, end] intervals of the limited task.
	type ev struct {
		at    int64
		delta int
	}
	var evs []ev
	pids := map[string]bool{}
	for _, r := range runs {
		if ids[r.job] == concTask {
			evs = append(evs, ev{r.start, 1}, ev{r.end, -1})
			pids[r.pid] = true
		}
	}
	if len(evs) != 2*nConc {
		t.Fatalf("%d runs of %s logged, want %d", len(evs)/2, concTask, nConc)
	}
	slices.SortFunc(evs, func(x, y ev) int {
		if x.at != y.at {
			return int(x.at - y.at)
		}
		return x.delta - y.delta // an end before a start at the same instant
	})
	peak, cur := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	t.Logf("%s: peak %d running at once, run by %d processes", concTask, peak, len(pids))
	if peak > 5 {
		t.Errorf("%s ran %d jobs at once, above its max_concurrency=5", concTask, peak)
	}
	// Rate: the store's StartedAt of every job of the rate-limited task.
	var starts []time.Time
	for id, task := range ids {
		if task != rateTask {
			continue
		}
		j, err := b.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != nuvom.StateSucceeded {
			t.Fatalf("job %s of %s is %s", id, rateTask, j.State)
		}
		starts = append(starts, j.StartedAt)
	}
	slices.SortFunc(starts, func(x, y time.Time) int { return x.Compare(y) })
	worst := 0
	for i := range starts {
		n := 0
		for k := i; k < len(starts) && starts[k].Before(starts[i].Add(time.Second)); k++ {
			n++
		}
		worst = max(worst, n)
	}
	t.Logf("%s: at most %d starts in a one-second window; %d starts over %s", rateTask, worst, len(starts),
		starts[len(starts)-1].Sub(starts[0]))
	if worst > 10 {
		t.Errorf("%s started %d jobs within one second, above its rate=10/s", rateTask, worst)
	}
}

// TestFlowControlRedis is TestFlowControlSQLite on Redis: three worker
// processes, each in its own working directory as on its own host.
func TestFlowControlRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes")
	}
	srv := redistest.Start(t)
	flowControlTest(t, t.TempDir(), "redis", srv.URL(0), openRedis(t, srv.URL(0)))
}
