package redis

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestDeclareLimitsConcurrently: worker processes starting together all
// declare their tasks' limits at once; every declaration lands and none
// fails. (A WATCH transaction interrupted by another declaration used to be
// given up on, which would leave a task unlimited; CI once saw a
// rate-limited task started 35 times within 3 ms by three workers. This
// test did not make that collision happen before the retry was added.)
func TestDeclareLimitsConcurrently(t *testing.T) {
	srv := redistest.Start(t)
	declared := map[string]backend.Limit{}
	for i := range 20 {
		declared[fmt.Sprintf("t%d", i)] = backend.Limit{MaxConcurrency: i + 1, Rate: 10, Per: time.Second}
	}
	var backends []*Backend
	for range 16 {
		backends = append(backends, openTest(t, srv))
	}
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, len(backends))
		for i, b := range backends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = b.DeclareLimits(t.Context(), declared)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: backend %d: DeclareLimits: %v", round, i, err)
			}
		}
		got, err := backends[0].TaskLimits(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]backend.Limit{}
		for _, l := range got {
			have[l.Task] = l.Declared
		}
		for task, l := range declared {
			if have[task] != l {
				t.Fatalf("round %d: task %s declared %+v, stored %+v", round, task, l, have[task])
			}
		}
		if _, err := backends[0].c.Del(t.Context(), backends[0].limitsKey()).Result(); err != nil {
			t.Fatal(err)
		}
	}
}
