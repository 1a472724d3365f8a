package schedule

import (
	"strings"
	"testing"
)

// TestCronThatNeverFiresIsRefused: "0 0 30 2 *" (30 February) was accepted and
// stored, and would never run; specs with a real date still parse.
func TestCronThatNeverFiresIsRefused(t *testing.T) {
	for _, spec := range []string{"0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "0 0 0 31 11 *"} {
		_, err := ParseCron(spec, "Europe/Berlin")
		if err == nil || !strings.Contains(err.Error(), "never fires") {
			t.Errorf("%q: err %v, want it refused as never firing", spec, err)
		}
	}
	for _, spec := range []string{"0 0 29 2 *", "0 0 31 * *", "0 0 30 2 1", "@yearly", "@every 90s", "0 3 * * *"} {
		if _, err := ParseCron(spec, "Europe/Berlin"); err != nil {
			t.Errorf("%q: %v", spec, err)
		}
	}
}
