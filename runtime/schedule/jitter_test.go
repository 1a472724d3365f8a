package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// TestCronJitterShorterThanGap: a jitter as long as the gap between a cron
// spec's fire times is refused, as it is for intervals (runs would start out
// of order, two at once); "* * * * *" with --jitter 5m was stored.
func TestCronJitterShorterThanGap(t *testing.T) {
	task := nuvom.TaskSpec{Name: "kinds.NoCtx", Options: nuvom.TaskOptions{Queue: "default"}}
	now := time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)
	_, err := schedule.Build(task, nil, nuvom.Cron("* * * * *", "").WithJitter(5*time.Minute), now)
	if err == nil || !strings.Contains(err.Error(), `jitter 5m0s is not shorter than 1m0s, the shortest time between two runs of cron "* * * * *"`) {
		t.Fatalf("every minute with a 5m jitter: %v, want it refused", err)
	}
	// The shortest gap counts: 09:00 and 10:00 daily are an hour apart.
	if _, err := schedule.Build(task, nil, nuvom.Cron("0 9,10 * * *", "").WithJitter(2*time.Hour), now); err == nil {
		t.Fatal("09:00 and 10:00 with a 2h jitter accepted")
	}
	for _, c := range []struct {
		spec   string
		jitter time.Duration
	}{{"* * * * *", 30 * time.Second}, {"0 3 * * *", time.Hour}, {"0 9,10 * * *", 59 * time.Minute}} {
		if _, err := schedule.Build(task, nil, nuvom.Cron(c.spec, "").WithJitter(c.jitter), now); err != nil {
			t.Errorf("cron %q with jitter %s: %v", c.spec, c.jitter, err)
		}
	}
}
