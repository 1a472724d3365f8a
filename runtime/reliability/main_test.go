package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/file"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
	"github.com/nuvom/nuvom/runtime/redis"
	"github.com/nuvom/nuvom/runtime/sqlite"
	"github.com/nuvom/nuvom/runtime/workercmd"
)

// The test binary is re-executed as a worker process when roleEnv is set:
// "worker" runs a nuvom.Worker configured by the JSON workerConfig in
// configEnv; "workercmd" runs the production worker main (workercmd.Main),
// configured by NUVOM_* variables, with the executions log named in configEnv.
const (
	roleEnv   = "NUVOM_RELIABILITY_ROLE"
	configEnv = "NUVOM_RELIABILITY_CONFIG"
)

// The one task of these tests: work(seq, sleepMillis) logs its execution,
// then sleeps (honouring its context) and returns seq.
const (
	workTask = "reliability.work"
	workSig  = "reliability-work-v1"
)

// workerConfig tells a worker process what to run.
type workerConfig struct {
	Backend     string        `json:"backend"` // sqlite or file
	Path        string        `json:"path"`    // database file or queue folder
	ExecLog     string        `json:"exec_log"`
	Concurrency int           `json:"concurrency"`
	LeaseFor    time.Duration `json:"lease_for"`
	// RecoverEvery is how often expired leases are recovered; default LeaseFor.
	RecoverEvery time.Duration `json:"recover_every"`
	Grace        time.Duration `json:"grace"`
	Poll         time.Duration `json:"poll"`
	Burst        bool          `json:"burst"`
	LogLevel     string        `json:"log_level"` // debug, info, warn or error; default info
	// MaxLost is WorkerOptions.MaxLost; 0: its default, negative: no limit.
	MaxLost int `json:"max_lost"`
	// BusyTimeout is the SQLite busy timeout; 0: its default.
	BusyTimeout time.Duration `json:"busy_timeout"`
}

func TestMain(m *testing.M) {
	switch role := os.Getenv(roleEnv); role {
	case "":
		os.Exit(m.Run())
	case "worker":
		os.Exit(workerProcess(os.Stdin, os.Stderr))
	case "workercmd":
		os.Exit(workercmdProcess(os.Stderr))
	default:
		fmt.Fprintf(os.Stderr, "reliability: unknown %s %q\n", roleEnv, role)
		os.Exit(2)
	}
}

// workerProcess runs a worker until it stops by itself (burst mode) or stdin
// reaches end of file (the parent's portable way to ask for a graceful stop).
// It returns the exit code.
func workerProcess(stdin io.Reader, stderr io.Writer) int {
	var c workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &c); err != nil {
		fmt.Fprintf(stderr, "reliability worker: bad %s: %v\n", configEnv, err)
		return 2
	}
	var level slog.Level
	if c.LogLevel != "" {
		if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
			fmt.Fprintf(stderr, "reliability worker: bad log level %q: %v\n", c.LogLevel, err)
			return 2
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	execLog, err := openExecLog(c.ExecLog)
	if err != nil {
		logger.Error("open executions log", "err", err)
		return 1
	}
	defer execLog.Close()

	var b nuvom.Backend
	switch c.Backend {
	case "sqlite":
		opts := []sqlite.Option{sqlite.WithLogger(logger)}
		if c.BusyTimeout > 0 {
			opts = append(opts, sqlite.WithBusyTimeout(c.BusyTimeout))
		}
		b, err = sqlite.Open(c.Path, opts...)
	case "file":
		b, err = file.Open(c.Path, file.WithLogger(logger))
	case "redis": // Path is the Redis URL
		b, err = redis.Open(c.Path, redis.WithLogger(logger))
	default:
		err = fmt.Errorf("unknown backend %q", c.Backend)
	}
	if err != nil {
		logger.Error("open backend", "backend", c.Backend, "path", c.Path, "err", err)
		return 1
	}
	defer b.Close()
	reg, err := nuvom.NewRegistry(append(append(taskDefs(execLog), flowDefs(c.ExecLog)...), workflowDefs(c.ExecLog)...)...)
	if err != nil {
		logger.Error("register tasks", "err", err)
		return 1
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{
		Concurrency: c.Concurrency, LeaseFor: c.LeaseFor, Grace: c.Grace,
		RecoverEvery: c.RecoverEvery, PollInterval: c.Poll, Burst: c.Burst, Logger: logger, MaxLost: c.MaxLost,
	})
	if err != nil {
		logger.Error("new worker", "err", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	if err := w.Run(ctx); err != nil {
		logger.Error("worker", "err", err)
		return 1
	}
	return 0
}

// workercmdProcess runs the production worker main over the tasks.
func workercmdProcess(stderr io.Writer) int {
	var c workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &c); err != nil {
		fmt.Fprintf(stderr, "reliability workercmd: bad %s: %v\n", configEnv, err)
		return 2
	}
	execLog, err := openExecLog(c.ExecLog)
	if err != nil {
		fmt.Fprintf(stderr, "reliability workercmd: %v\n", err)
		return 1
	}
	defer execLog.Close()
	return workercmd.Main(taskDefs(execLog), nil)
}

func openExecLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open executions log %s: %w", path, err)
	}
	return f, nil
}

// workSpec is the enqueue side of the work task.
func workSpec(retries int) nuvom.TaskSpec {
	return nuvom.TaskSpec{Name: workTask, Signature: workSig, Options: nuvom.TaskOptions{
		Retries: retries, RetryDelay: 10 * time.Millisecond, Backoff: nuvom.BackoffFixed,
	}}
}

// workArgs encodes work's arguments as generated code does.
func workArgs(seq, sleepMillis int) ([]byte, error) {
	w := nuvomimpl.NewArgWriter(2)
	w.Int(int64(seq))
	w.Int(int64(sleepMillis))
	return w.Finish()
}

// taskDefs are the worker's tasks, written as nuvomgen would generate them:
// the invoker decodes the arguments with an ArgReader and calls the function.
// Before sleeping, work appends "<job id> <pid>\n" to execLog in one write.
func taskDefs(execLog *os.File) []nuvom.TaskDef {
	pid := strconv.Itoa(os.Getpid())
	work := func(ctx context.Context, seq int64, sleep time.Duration) (int64, error) {
		info, ok := nuvom.JobInfoFromContext(ctx)
		if !ok {
			return 0, errors.New("work: no job in the context")
		}
		if _, err := execLog.Write([]byte(info.ID + " " + pid + "\n")); err != nil {
			return 0, fmt.Errorf("work %s: log execution: %w", info.ID, err)
		}
		t := time.NewTimer(sleep)
		defer t.Stop()
		select {
		case <-t.C:
			return seq, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("work %s: %w", info.ID, ctx.Err())
		}
	}
	spec := workSpec(0)
	return []nuvom.TaskDef{{
		TaskSpec: spec,
		Invoke: func(ctx context.Context, args []byte) ([]byte, error) {
			r := nuvomimpl.NewArgReader(workTask, args, 2)
			seq := r.Int()
			sleep := time.Duration(r.Int()) * time.Millisecond
			if err := r.Err(); err != nil {
				return nil, err
			}
			res, err := work(ctx, seq, sleep)
			if err != nil {
				return nil, err
			}
			return nuvomimpl.EncodeResult(res)
		},
	}}
}

// --- the test side ---

// workerEnv is os.Environ without NUVOM_* variables, so that a developer's
// settings cannot leak into the worker processes.
func workerEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NUVOM_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// proc is a worker process started by a test.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr string // file holding its stdout and stderr
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

// startWorker starts the test binary as a worker process with role and cfg.
// The process is killed at the end of the test if it is still running.
func startWorker(t testing.TB, name, role string, cfg workerConfig, env ...string) *proc {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("encode config of %s: %v", name, err)
	}
	logPath := filepath.Join(filepath.Dir(cfg.ExecLog), name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create output file of %s: %v", name, err)
	}
	defer out.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if cfg.Backend == "redis" { // another host: its own working directory
		cmd.Dir = t.TempDir()
	}
	cmd.Env = workerEnv(append([]string{roleEnv + "=" + role, configEnv + "=" + string(raw)}, env...)...)
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin of %s: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, stdin: stdin, stderr: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop asks the worker for a graceful stop by closing its stdin.
func (p *proc) stop() { _ = p.stdin.Close() }

// kill9 kills the worker (SIGKILL on Unix, TerminateProcess on Windows) and
// waits until it is gone.
func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// exited waits up to d for the process to exit and returns Wait's error.
// When d passes first, the process is killed and the test fails.
func (p *proc) exited(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit within %s; killed it. Its output ends with:\n%s", p.name, d, p.tail(40))
		return nil
	}
}

// mustExitOK waits up to d for a clean exit (code 0) and fails the test otherwise.
func (p *proc) mustExitOK(d time.Duration) {
	p.t.Helper()
	if err := p.exited(d); err != nil {
		p.t.Fatalf("%s exited with %v; its output ends with:\n%s", p.name, err, p.tail(40))
	}
}

// output returns everything the process wrote to stdout and stderr.
func (p *proc) output() string {
	b, err := os.ReadFile(p.stderr)
	if err != nil {
		return fmt.Sprintf("(cannot read output of %s: %v)", p.name, err)
	}
	return string(b)
}

// tail returns the last n lines of the process's output.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every few milliseconds until it holds, failing the test
// with what when d passes first or cond fails.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// execution is one line of the executions log.
type execution struct {
	job string
	pid int
}

// readExecutions parses the executions log; a malformed line fails the test
// (every line is written by one append write, so none may be torn).
func readExecutions(t testing.TB, path string) []execution {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read executions log: %v", err)
	}
	var out []execution
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if !strings.HasSuffix(line, "\n") || len(f) != 2 {
			t.Fatalf("executions log %s line %d is malformed: %q", path, i+1, line)
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("executions log %s line %d: bad pid: %q", path, i+1, line)
		}
		out = append(out, execution{job: f[0], pid: pid})
	}
	return out
}

// countLines counts the complete lines of the file at path (0 when missing).
func countLines(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return bytes.Count(data, []byte{'\n'}), nil
}

// runsPerJob counts executions per job id.
func runsPerJob(execs []execution) map[string]int {
	n := make(map[string]int, len(execs))
	for _, e := range execs {
		n[e.job]++
	}
	return n
}

// openSQLite opens the test's own connection to the database at path.
func openSQLite(t testing.TB, path string) *sqlite.Backend {
	t.Helper()
	b, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// enqueueWork enqueues n work jobs in one batch, job i sleeping sleepMillis(i),
// and returns their ids in order.
func enqueueWork(t testing.TB, b nuvom.Backend, n, retries int, sleepMillis func(i int) int) []string {
	t.Helper()
	spec := workSpec(retries)
	reqs := make([]nuvom.Request, n)
	for i := range reqs {
		args, err := workArgs(i, sleepMillis(i))
		if err != nil {
			t.Fatalf("encode args of job %d: %v", i, err)
		}
		reqs[i] = nuvom.Request{Spec: spec, Args: args}
	}
	res, err := nuvom.NewClient(b).EnqueueBatch(context.Background(), reqs)
	if err != nil {
		t.Fatalf("enqueue %d jobs: %v", n, err)
	}
	ids := make([]string, n)
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids
}

// countStates sums Stats over queues.
func countStates(b nuvom.Backend) (map[nuvom.State]int, error) {
	stats, err := b.Stats(context.Background(), time.Now())
	if err != nil {
		return nil, err
	}
	n := map[nuvom.State]int{}
	for _, s := range stats {
		n[s.State] += s.Count
	}
	return n, nil
}

// allFinal reports whether total jobs are in a final state.
func allFinal(b nuvom.Backend, total int) func() (bool, error) {
	return func() (bool, error) {
		n, err := countStates(b)
		if err != nil {
			return false, err
		}
		final := 0
		for s, c := range n {
			if s.Final() {
				final += c
			}
		}
		return final >= total, nil
	}
}

// listAll returns every job's full record, by id.
func listAll(t testing.TB, b nuvom.Backend, total int) map[string]*nuvom.Job {
	t.Helper()
	jobs, err := b.List(context.Background(), nuvom.ListFilter{Limit: total + 1})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	byID := make(map[string]*nuvom.Job, len(jobs))
	for _, j := range jobs {
		byID[j.ID] = j
	}
	return byID
}

// lineWith returns the first line of out containing every one of parts.
func lineWith(out string, parts ...string) (string, bool) {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return line, true
		}
	}
	return "", false
}
