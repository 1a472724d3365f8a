package prometheus

import (
	"testing"
	"time"
)

// The refresher waits its period, or ten times the last read when that is
// longer: with a million rows a read takes seconds, and a 5 s period would
// keep a core busy most of the time.
func TestNextRefresh(t *testing.T) {
	for _, c := range []struct{ period, took, want time.Duration }{
		{5 * time.Second, time.Millisecond, 5 * time.Second},
		{5 * time.Second, 500 * time.Millisecond, 5 * time.Second},
		{5 * time.Second, 3 * time.Second, 30 * time.Second},
		{50 * time.Millisecond, 0, 50 * time.Millisecond},
	} {
		if got := nextRefresh(c.period, c.took); got != c.want {
			t.Errorf("nextRefresh(%s, %s) = %s, want %s", c.period, c.took, got, c.want)
		}
	}
}
