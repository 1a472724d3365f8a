package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/sqlitestore"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// TestMain lets the test binary run as a dispatcher process (see dispatcherChild).
func TestMain(m *testing.M) {
	if os.Getenv("NUVOM_TEST_DISPATCHER") != "" {
		os.Exit(dispatcherChild())
	}
	os.Exit(m.Run())
}

// dispatcherChild runs a dispatcher on the queue and schedule tables of one
// SQLite file until its deadline. NUVOM_TEST_ELECT=1 makes it take part in the
// lease election; otherwise it ticks regardless, racing the others.
func dispatcherChild() int {
	path := os.Getenv("NUVOM_TEST_DB")
	until, err := time.Parse(time.RFC3339Nano, os.Getenv("NUVOM_TEST_UNTIL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: bad deadline:", err)
		return 3
	}
	be, err := sqlite.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	defer be.Close()
	store, err := sqlitestore.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	defer store.Close()
	d := &schedule.Dispatcher{Store: store, Client: nuvom.NewClient(be), LeaseFor: -1, MaxSleep: 200 * time.Millisecond}
	if os.Getenv("NUVOM_TEST_ELECT") == "1" {
		d.LeaseFor = 2 * time.Second
	}
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// TestThreeDispatcherProcessesOneJobPerTick runs three dispatcher processes on
// one SQLite database for a cron schedule firing every second, over more than
// 20 ticks; one of them is killed halfway (a crash mid-tick is possible). Each
// fire time must have exactly one job.
func TestThreeDispatcherProcessesOneJobPerTick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 25 seconds")
	}
	path := filepath.Join(t.TempDir(), "nuvom.db")
	ctx := context.Background()
	be, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	store, err := sqlitestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	task := nuvom.TaskSpec{Name: "app.Tick", Signature: "s", Options: nuvom.TaskOptions{Queue: "default"}}
	sc, err := schedule.NewService(store).Create(ctx, task, []byte{0x90}, nuvom.Cron("* * * * * *", "Europe/Berlin"))
	if err != nil {
		t.Fatal(err)
	}
	const run = 23 * time.Second
	start := time.Now()
	until := start.Add(run)
	var cmds []*exec.Cmd
	for i := 0; i < 3; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "NUVOM_TEST_DISPATCHER=1", "NUVOM_TEST_DB="+path,
			"NUVOM_TEST_UNTIL="+until.Format(time.RFC3339Nano), "NUVOM_TEST_ELECT="+strconv.Itoa(i%2))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	time.Sleep(run / 2)
	if err := cmds[0].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		err := cmd.Wait()
		if i > 0 && err != nil {
			t.Fatalf("dispatcher %d: %v", i, err)
		}
	}
	end := time.Now()

	jobs, err := be.List(ctx, nuvom.ListFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	perKey := map[string]int{}
	var fires []int64
	for _, j := range jobs {
		perKey[j.UniqueKey]++
		if perKey[j.UniqueKey] == 1 {
			sec, err := strconv.ParseInt(j.UniqueKey[strings.LastIndex(j.UniqueKey, ":")+1:], 10, 64)
			if err != nil || !j.RunAt.Equal(time.Unix(sec, 0)) {
				t.Errorf("job %s: key %s run at %s", j.ID, j.UniqueKey, j.RunAt)
			}
			fires = append(fires, sec)
		}
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("fire time %s has %d jobs, want exactly 1", k, n)
		}
	}
	sort.Slice(fires, func(i, j int) bool { return fires[i] < fires[j] })
	if len(fires) < 20 {
		t.Fatalf("%d ticks enqueued in %s, want at least 20", len(fires), end.Sub(start))
	}
	// Every second between the first and the last fire time has its job: no tick lost.
	for i := 1; i < len(fires); i++ {
		if fires[i] != fires[i-1]+1 {
			t.Errorf("gap between fire times %d and %d", fires[i-1], fires[i])
		}
	}
	if first := time.Unix(fires[0], 0); first.Sub(start) > 2*time.Second {
		t.Errorf("first tick at %s, %s after the start", first, first.Sub(start))
	}
	got, _ := store.Get(ctx, sc.ID)
	t.Logf("%d jobs for %d distinct fire times over %s; schedule next run %s", len(jobs), len(fires), end.Sub(start).Round(time.Millisecond), got.NextRun)
}
