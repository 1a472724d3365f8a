package nuvom

import (
	"context"
	"errors"
	"testing"
)

type ctxKey struct{}

// An attempt's context is made on first use: whether it is made before or
// after the attempt is cancelled, it ends up cancelled with the first cause,
// carries the job's JobInfo and the values of the worker's context.
func TestJobCtxMadeBeforeOrAfterItsCancel(t *testing.T) {
	base := context.WithValue(context.Background(), ctxKey{}, "v")
	for _, early := range []bool{false, true} {
		r := &run{job: &Job{ID: "j1"}, base: base, info: JobInfo{ID: "j1", Attempt: 2}}
		var ctx context.Context = jobCtx{r}
		if early {
			_ = ctx.Done() // made before the cancel
		}
		if ctx.Err() != nil {
			t.Fatalf("early=%v: Err before the cancel = %v", early, ctx.Err())
		}
		if info, ok := JobInfoFromContext(ctx); !ok || info.ID != "j1" || AttemptFromContext(ctx) != 2 {
			t.Fatalf("early=%v: JobInfo = %+v, %v", early, info, ok)
		}
		r.cancel(ErrJobCancelled)
		r.cancel(errAttemptOver) // a later cause does not replace the first
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("early=%v: Err after the cancel = %v", early, ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatalf("early=%v: Done not closed after the cancel", early)
		}
		if c := context.Cause(ctx); !errors.Is(c, ErrJobCancelled) {
			t.Fatalf("early=%v: Cause = %v, want ErrJobCancelled", early, c)
		}
		if v := ctx.Value(ctxKey{}); v != "v" {
			t.Fatalf("early=%v: value of the worker's context = %v", early, v)
		}
		if _, ok := ctx.Deadline(); ok {
			t.Fatalf("early=%v: a deadline without a timeout", early)
		}
	}
}
