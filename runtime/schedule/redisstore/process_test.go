package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/redistest"
	nredis "github.com/nuvom/nuvom/runtime/redis"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/redisstore"
)

// TestMain lets the test binary run as a dispatcher process (see dispatcherChild).
func TestMain(m *testing.M) {
	if os.Getenv("NUVOM_TEST_DISPATCHER") != "" {
		os.Exit(dispatcherChild())
	}
	os.Exit(m.Run())
}

// hangGuard bounds how long the process tests wait for anything; it is a
// guard against a hang, not a budget (a loaded machine is slow).
const hangGuard = 3 * time.Minute

// dispatcherChild runs a dispatcher named NUVOM_TEST_OWNER on the Redis at
// NUVOM_TEST_REDIS (queue and schedules under the key prefix
// NUVOM_TEST_PREFIX) until its standard input closes (or the hang guard
// passes). The processes share nothing but the Redis address. NUVOM_TEST_ELECT=1
// makes it take part in the lease election with the default lease;
// otherwise it ticks regardless, racing the others. Its misfire grace is a
// minute, so that a tick delayed by a loaded machine is still enqueued.
func dispatcherChild() int {
	url, prefix := os.Getenv("NUVOM_TEST_REDIS"), os.Getenv("NUVOM_TEST_PREFIX")
	be, err := nredis.Open(url, nredis.WithPrefix(prefix))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	defer be.Close()
	store, err := redisstore.Open(url, prefix, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	defer store.Close()
	d := &schedule.Dispatcher{Store: store, Client: nuvom.NewClient(be), Owner: os.Getenv("NUVOM_TEST_OWNER"),
		LeaseFor: -1, MaxSleep: 200 * time.Millisecond, MisfireGrace: time.Minute}
	if os.Getenv("NUVOM_TEST_ELECT") == "1" {
		d.LeaseFor = 0 // the default
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// child is one dispatcher process; closing stdin stops it.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// procRig is a private redis-server with a cron schedule firing every
// second and dispatcher processes on it.
type procRig struct {
	srv      *redistest.Server
	prefix   string
	be       *nredis.Backend
	children []*child
}

func newProcRig(t *testing.T) *procRig {
	t.Helper()
	srv := redistest.Start(t)
	r := &procRig{srv: srv, prefix: "proc"}
	be, err := nredis.Open(srv.URL(0), nredis.WithPrefix(r.prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	r.be = be
	store, err := redisstore.Open(srv.URL(0), r.prefix, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	task := nuvom.TaskSpec{Name: "app.Tick", Signature: "s", Options: nuvom.TaskOptions{Queue: "default"}}
	if _, err := schedule.NewService(store).Create(context.Background(), task, []byte{0x90}, nuvom.Cron("* * * * * *", "Europe/Berlin")); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *procRig) start(t *testing.T, elect bool) *child {
	t.Helper()
	name := "child-" + strconv.Itoa(len(r.children))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir() // a working directory of its own: the processes share only the Redis address
	cmd.Env = append(os.Environ(), "NUVOM_TEST_DISPATCHER=1", "NUVOM_TEST_REDIS="+r.srv.URL(0), "NUVOM_TEST_PREFIX="+r.prefix,
		"NUVOM_TEST_OWNER="+name, "NUVOM_TEST_ELECT="+map[bool]string{true: "1", false: "0"}[elect])
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin}
	r.children = append(r.children, c)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return c
}

// stop closes the children's standard input and waits for them; those not
// killed must exit cleanly.
func (r *procRig) stop(t *testing.T, killed *child) {
	t.Helper()
	for _, c := range r.children {
		c.stdin.Close()
	}
	for _, c := range r.children {
		err := c.cmd.Wait()
		if c != killed && err != nil {
			t.Errorf("dispatcher %s: %v", c.name, err)
		}
	}
}

// leaseHolder returns the owner of the dispatcher lease.
func (r *procRig) leaseHolder(t *testing.T) string {
	t.Helper()
	data, err := r.be.Client().Get(context.Background(), r.prefix+":{schedules}:lease").Result()
	if err != nil {
		t.Fatalf("read the lease holder: %v", err)
	}
	var l struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal([]byte(data), &l); err != nil {
		t.Fatalf("read the lease holder from %q: %v", data, err)
	}
	return l.Owner
}

// fire is the jobs enqueued for one fire time.
type fire struct {
	at   time.Time
	jobs []*nuvom.Job
}

// fires returns the fire times enqueued so far, oldest first.
func (r *procRig) fires(t *testing.T) []fire {
	t.Helper()
	jobs, err := r.be.List(context.Background(), nuvom.ListFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]*fire{}
	for _, j := range jobs {
		f := byKey[j.UniqueKey]
		if f == nil {
			sec, err := strconv.ParseInt(j.UniqueKey[strings.LastIndex(j.UniqueKey, ":")+1:], 10, 64)
			if err != nil {
				t.Fatalf("job %s: key %q does not end in a whole second", j.ID, j.UniqueKey)
			}
			f = &fire{at: time.Unix(sec, 0)}
			byKey[j.UniqueKey] = f
		}
		f.jobs = append(f.jobs, j)
	}
	out := make([]fire, 0, len(byKey))
	for _, f := range byKey {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// waitFor polls the enqueued fire times until cond holds, failing after the
// hang guard.
func (r *procRig) waitFor(t *testing.T, what string, cond func([]fire) bool) []fire {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		fs := r.fires(t)
		if cond(fs) {
			return fs
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %s (%d fire times enqueued)", what, hangGuard, len(fs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOnePerTick asserts exactly one job per fire time, run at its fire
// time, and no second missing between the first and the last.
func checkOnePerTick(t *testing.T, fs []fire) {
	t.Helper()
	for i, f := range fs {
		if len(f.jobs) != 1 {
			t.Errorf("fire time %s has %d jobs, want exactly 1", f.at.Format(time.RFC3339), len(f.jobs))
		}
		if !f.jobs[0].RunAt.Equal(f.at) {
			t.Errorf("job %s for fire time %s runs at %s", f.jobs[0].ID, f.at, f.jobs[0].RunAt)
		}
		if i > 0 && !f.at.Equal(fs[i-1].at.Add(time.Second)) {
			t.Errorf("ticks missing between %s and %s", fs[i-1].at.Format(time.RFC3339), f.at.Format(time.RFC3339))
		}
	}
}

// TestThreeDispatcherProcessesOneJobPerTick runs three dispatcher processes
// (one elected, two ticking regardless) on one Redis for a cron schedule
// firing every second, until 20 fire times are enqueued; one racing process
// is killed after 10 (a crash mid-tick is possible). Each fire time must have
// exactly one job, none missing: the unique key of a tick holds on Redis.
func TestThreeDispatcherProcessesOneJobPerTick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 20 seconds")
	}
	r := newProcRig(t)
	start := time.Now()
	victim := r.start(t, false)
	r.start(t, true)
	r.start(t, false)
	r.waitFor(t, "10 fire times", func(fs []fire) bool { return len(fs) >= 10 })
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "20 fire times", func(fs []fire) bool { return len(fs) >= 20 })
	r.stop(t, victim)
	fs := r.fires(t)
	checkOnePerTick(t, fs)
	t.Logf("%d fire times in %s, first %s after the start", len(fs), time.Since(start).Round(time.Millisecond), fs[0].at.Sub(start).Round(time.Millisecond))
}

// TestLeaderKilledFailover runs three electing dispatcher processes on one
// Redis, kills the lease holder (SIGKILL), and waits until ticks 8 seconds
// past the kill are enqueued: another dispatcher must take over the lease
// and enqueue every tick after the kill exactly once (those that fell due
// during the takeover too). The takeover gap — how late the latest tick
// due after the kill was enqueued, from the recorded job times; the target
// is under 3 seconds with the default 2s lease — is reported, not asserted
// against the wall clock.
func TestLeaderKilledFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 15 seconds")
	}
	r := newProcRig(t)
	for range 3 {
		r.start(t, true)
	}
	r.waitFor(t, "3 fire times", func(fs []fire) bool { return len(fs) >= 3 })
	leader := r.leaseHolder(t)
	var victim *child
	for _, c := range r.children {
		if c.name == leader {
			victim = c
		}
	}
	if victim == nil {
		t.Fatalf("lease held by %q, not one of the dispatchers", leader)
	}
	killAt := time.Now()
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	r.waitFor(t, "fire times 8s past the kill", func(fs []fire) bool {
		return len(fs) > 0 && fs[len(fs)-1].at.After(killAt.Add(8*time.Second))
	})
	newLeader := r.leaseHolder(t)
	if newLeader == leader {
		t.Errorf("lease holder after the kill: %q; want another dispatcher than %s", newLeader, leader)
	}
	r.stop(t, victim)
	fs := r.fires(t)
	checkOnePerTick(t, fs)
	var worst time.Duration
	var worstAt time.Time
	for _, f := range fs {
		if f.at.After(killAt) {
			if late := f.jobs[0].CreatedAt.Sub(f.at); late > worst {
				worst, worstAt = late, f.at
			}
		}
	}
	t.Logf("killed leader %s; %s took over; ticks after the kill enqueued at most %s late (tick %s); %d fire times",
		leader, newLeader, worst.Round(time.Millisecond), worstAt.Format(time.RFC3339), len(fs))
}
