package nuvom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

// execute runs one claimed job and hands its outcome to the completer. It
// returns true when the job was abandoned after its timeout: its runner must
// then exit, a fresh one having taken its place.
//
// It is the engine's per-job path: everything an attempt needs lives in r
// (one allocation per job with the job itself), the attempt's context is r
// seen through jobCtx, and an attempt without a timeout starts no timer.
func (w *Worker) execute(r *run) (abandoned bool) {
	j := r.job
	start := w.now()
	r.info = JobInfo{ID: j.ID, Task: j.Task, Queue: j.Queue, Priority: j.Priority, Attempt: j.Attempt,
		MaxAttempts: j.MaxAttempts, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, Worker: w.o.ID, Meta: j.Meta}
	if r.info.StartedAt.IsZero() {
		r.info.StartedAt = start
	}
	info := r.info
	def := w.defs[j.Task]
	if def == nil {
		msg := fmt.Sprintf("task %s is not registered in this worker", j.Task)
		w.finishRejected(r, info, start, StateFailed, msg)
		return false
	}
	if def.Signature != j.Signature {
		msg := fmt.Sprintf("task %s: signature mismatch: the job has %s, this worker has %s; the task's parameters changed since the job was enqueued, so it is not decoded",
			j.Task, orNone(j.Signature), orNone(def.Signature))
		if !w.handBack(r, info, start, msg) {
			w.finishRejected(r, info, start, StateFailed, msg)
		}
		return false
	}
	r.def = def

	var attemptCtx context.Context = jobCtx{r}
	var cancel context.CancelFunc
	var abandonTimer *time.Timer
	if j.Timeout > 0 {
		attemptCtx, cancel = context.WithTimeout(attemptCtx, j.Timeout)
		abandonTimer = time.AfterFunc(j.Timeout+w.o.AbandonAfter, func() { w.abandon(r, *def, r.info, start) })
	}
	if w.log.Enabled(attemptCtx, slog.LevelDebug) {
		w.log.Debug("job started", "worker", w.o.ID, "task", j.Task, "job", j.ID, "attempt", j.Attempt, "queue", j.Queue)
	}

	var err error
	if len(w.o.Middleware) == 0 {
		err = callHandler(r.core, attemptCtx, info)
	} else {
		err = callHandler(chain(r.core, w.o.Middleware), attemptCtx, info)
	}
	timedOut := j.Timeout > 0 && errors.Is(attemptCtx.Err(), context.DeadlineExceeded)
	if cancel != nil {
		cancel()
	}
	if abandonTimer != nil {
		abandonTimer.Stop()
	}

	end := w.now()
	var o Outcome
	if timedOut {
		o = w.timeoutOutcome(j, *def, OutcomeTimedOut, err, end)
	} else {
		o = w.attemptOutcome(j, def, r.result, err, end)
	}
	o.Attempt.StartedAt = start
	if !w.finishDecided(r, info, &o, end.Sub(start), runFinished) {
		if r.state.Load() == runAbandoned {
			n := w.abandoned.Add(-1)
			w.log.Info("an abandoned task returned at last", "worker", w.o.ID, "task", j.Task, "job", j.ID, "after", end.Sub(start), "still_abandoned", n)
			return true
		}
	}
	return false
}

// core is the innermost handler of an attempt: the task's Before hook, the
// task, its OnError and After hooks, each with its panics recovered.
func (r *run) core(ctx context.Context, info JobInfo) error {
	def := r.def
	var err error
	if def.Before != nil {
		err = safeCall(func() error { return def.Before(ctx, info) })
	}
	if err == nil {
		err = safeCall(func() error {
			res, ierr := def.Invoke(ctx, r.job.Args)
			r.result = res
			if ierr != nil && isNilError(ierr) {
				ierr = fmt.Errorf("task returned a nil %T as its error: an error interface holding a nil pointer is not nil; return a plain nil", ierr)
			}
			return ierr
		})
	}
	if err != nil && def.OnError != nil {
		if herr := safeCall(func() error { def.OnError(ctx, info, err); return nil }); herr != nil {
			err = errors.Join(err, herr)
		}
	}
	if def.After != nil {
		if herr := safeCall(func() error { def.After(ctx, info, err); return nil }); herr != nil {
			err = errors.Join(err, herr)
		}
	}
	return err
}

// callHandler runs h, turning a panic (in a middleware) into a *PanicError.
func callHandler(h Handler, ctx context.Context, info JobInfo) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(ctx, info)
}

// jobCtx is an attempt's context: the run's cancellable context, carrying
// the job's JobInfo. It is one pointer, so making it a context.Context
// allocates nothing; the cancellable context itself is made only when Done
// or a value is asked for (Err and Deadline do without). context.Cause and
// derived contexts see through it to the run's context (Value delegates
// every other key).
type jobCtx struct{ r *run }

func (c jobCtx) Deadline() (time.Time, bool) { return c.r.base.Deadline() }
func (c jobCtx) Done() <-chan struct{}       { return c.r.context().Done() }
func (c jobCtx) Err() error                  { return c.r.err() }
func (c jobCtx) Value(key any) any {
	if _, ok := key.(jobInfoKey); ok {
		return &c.r.info
	}
	return c.r.context().Value(key) // context.Cause asks for the cancellable context this way
}

func (c jobCtx) String() string { return "nuvom attempt context of job " + c.r.job.ID }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// abandon takes a timed-out job whose task did not return within AbandonAfter
// away from its runner, applies the timeout policy and starts a fresh runner.
func (w *Worker) abandon(r *run, def TaskDef, info JobInfo, start time.Time) {
	end := w.now()
	o := w.timeoutOutcome(r.job, def, OutcomeAbandoned, nil, end)
	o.Attempt.StartedAt = start
	if !w.finishDecided(r, info, &o, end.Sub(start), runAbandoned) {
		return // it returned (or was handed back) meanwhile
	}
	n := w.abandoned.Add(1)
	w.log.Warn("task abandoned: it ignores its context, so its goroutine keeps running; a fresh runner takes its place",
		"worker", w.o.ID, "task", r.job.Task, "job", r.job.ID, "abandoned_running", n)
	if w.o.MaxAbandoned > 0 && n > int64(w.o.MaxAbandoned) {
		w.tooManyOnce.Do(func() {
			w.log.Error("too many abandoned tasks still running; draining so that a supervisor can restart this worker clean",
				"worker", w.o.ID, "abandoned_running", n, "max", w.o.MaxAbandoned)
			close(w.tooMany)
		})
	}
	go w.runner()
}

// handBack leaves a job of another deploy's signature for a worker that has
// it: retrying later, its attempt refunded, for up to HandBackFor from the
// first hand-back (delays of 1s, 2s, 4s, ... up to a minute). It returns false
// when the time is up and the job must fail.
func (w *Worker) handBack(r *run, info JobInfo, start time.Time, msg string) bool {
	if w.o.HandBackFor < 0 {
		return false
	}
	first, n := start, 0
	for _, a := range r.job.Attempts {
		if a.Outcome == OutcomeHandedBack {
			if n == 0 {
				first = a.StartedAt
			}
			n++
		}
	}
	if start.Sub(first) >= w.o.HandBackFor {
		return false
	}
	delay := min(time.Second<<min(n, 6), time.Minute)
	why := msg + "; handed back for a worker with the job's signature"
	o := Outcome{
		Lease: r.job.Lease(), State: StateRetrying, RunAt: start.Add(delay), FinishedAt: start, Refund: true,
		Error: why, ErrorChain: []string{why},
		Attempt: w.attempt(r.job, start, start, OutcomeHandedBack, why),
	}
	w.finishDecided(r, info, &o, 0, runFinished)
	return true
}

// finishRejected fails a job that is not run at all.
func (w *Worker) finishRejected(r *run, info JobInfo, start time.Time, state State, msg string) {
	o := Outcome{
		Lease: r.job.Lease(), State: state, FinishedAt: start, Error: msg, ErrorChain: []string{msg},
		Attempt: w.attempt(r.job, start, start, OutcomeRejected, msg),
	}
	w.finishDecided(r, info, &o, 0, runFinished)
}

// finishDecided takes r (unless another party already finished it), logs o,
// reports it to OnOutcome and queues it for storing.
func (w *Worker) finishDecided(r *run, info JobInfo, o *Outcome, d time.Duration, to int32) bool {
	if !r.state.CompareAndSwap(runStarted, to) {
		return false
	}
	j := r.job
	if !r.lost.Load() {
		w.logOutcome(j, o, d)
		if w.o.OnOutcome != nil {
			w.reportOutcome(info, o)
		}
	}
	w.settle(r, o)
	return true
}

// logOutcome logs how an attempt ended, building the line only when the
// logger takes its level (a no-op job costs about as much as its log line).
func (w *Worker) logOutcome(j *Job, o *Outcome, d time.Duration) {
	level, msg := slog.LevelError, "job failed"
	var extra []any
	switch {
	case o.State == StateSucceeded && o.Attempt.Error == "":
		level, msg = slog.LevelInfo, "job finished"
	case o.State == StateSucceeded: // a timeout the task's policy ignores
		level, msg, extra = slog.LevelWarn, "job timed out; succeeded by its timeout policy (ignore)", []any{"err", o.Attempt.Error}
	case o.Attempt.Outcome == OutcomePanicked:
		msg, extra = "job panicked", []any{"err", o.Error, "stack", o.PanicStack}
	case o.State == StateQuarantined:
		msg, extra = "job quarantined: its payload cannot be decoded into the task's parameters", []any{"err", o.Error}
	case o.Attempt.Outcome == OutcomeHandedBack:
		level, msg, extra = slog.LevelInfo, "job of another deploy handed back: its signature differs from this worker's", []any{"run_at", o.RunAt}
	case o.State == StateRetrying:
		level, msg, extra = slog.LevelWarn, "job failed; will retry", []any{"err", o.Attempt.Error, "run_at", o.RunAt}
	default:
		extra = []any{"err", o.Attempt.Error}
	}
	ctx := context.Background()
	if !w.log.Enabled(ctx, level) {
		return
	}
	attrs := []any{"worker", w.o.ID, "task", j.Task, "job", j.ID, "attempt", j.Attempt, "duration", d, "outcome", o.Attempt.Outcome, "state", o.State}
	w.log.Log(ctx, level, msg, append(attrs, extra...)...)
}

func (w *Worker) attempt(j *Job, start, end time.Time, outcome, errMsg string) Attempt {
	return Attempt{Number: j.Attempt, StartedAt: start, FinishedAt: end, Worker: w.o.ID, Outcome: outcome, Error: errMsg}
}

// attemptOutcome decides the next state of a job whose attempt returned (in time).
func (w *Worker) attemptOutcome(j *Job, def *TaskDef, result []byte, err error, end time.Time) Outcome {
	o := Outcome{Lease: j.Lease(), FinishedAt: end}
	if err != nil && isNilError(err) { // a middleware or hook returned a typed nil
		err = fmt.Errorf("an attempt's handler returned a nil %T as its error: an error interface holding a nil pointer is not nil", err)
	}
	if err == nil {
		o.State = StateSucceeded
		if j.StoreResult {
			o.Result = result
		}
		o.Attempt = w.attempt(j, end, end, OutcomeSucceeded, "")
		return o
	}
	msg := errorText(err)
	o.Error, o.ErrorChain, o.PanicStack = msg, errorChain(err), panicStack(err)
	var de *nuvomimpl.DecodeError
	switch {
	case safely(func() bool { return errors.As(err, &de) }):
		o.State = StateQuarantined
		o.Attempt = w.attempt(j, end, end, OutcomeRejected, msg)
		return o
	case o.PanicStack != "":
		o.Attempt = w.attempt(j, end, end, OutcomePanicked, msg)
	default:
		o.Attempt = w.attempt(j, end, end, OutcomeFailed, msg)
	}
	w.retryOrFail(&o, j, def, err, end)
	return o
}

// timeoutOutcome applies the job's timeout policy to an attempt that timed out
// (outcome timed_out) or was abandoned (outcome abandoned).
func (w *Worker) timeoutOutcome(j *Job, def TaskDef, outcome string, err error, end time.Time) Outcome {
	msg := fmt.Sprintf("timed out after %s", j.Timeout)
	if outcome == OutcomeAbandoned {
		msg = fmt.Sprintf("timed out after %s and abandoned: the task ignored its context for a further %s", j.Timeout, w.o.AbandonAfter)
	}
	terr := errors.New(msg)
	if err != nil && !isNilError(err) && !errors.Is(err, context.DeadlineExceeded) {
		terr = fmt.Errorf("%s: %s", msg, errorText(err))
	}
	o := Outcome{Lease: j.Lease(), FinishedAt: end}
	switch j.TimeoutPolicy {
	case TimeoutIgnore:
		o.State = StateSucceeded
		o.Attempt = w.attempt(j, end, end, outcome, terr.Error()+" (ignored by the task's timeout policy)")
		return o
	case TimeoutRetry:
		o.Error, o.ErrorChain = terr.Error(), errorChain(terr)
		o.Attempt = w.attempt(j, end, end, outcome, terr.Error())
		w.retryOrFail(&o, j, &def, terr, end)
	default: // fail
		o.Error, o.ErrorChain = terr.Error(), errorChain(terr)
		o.Attempt = w.attempt(j, end, end, outcome, terr.Error())
		o.State = StateFailed
	}
	return o
}

// retryOrFail sets o's state to retrying (with its run-at) when attempts remain
// and err allows it, else to failed.
func (w *Worker) retryOrFail(o *Outcome, j *Job, def *TaskDef, err error, now time.Time) {
	if safely(func() bool { return IsNoRetry(err) }) || j.Attempt >= j.MaxAttempts {
		o.State = StateFailed
		return
	}
	var delay time.Duration
	asked := safely(func() bool { var ok bool; delay, ok = RetryDelayOf(err); return ok })
	if !asked {
		delay = backoffDelay(def.Options, j.Attempt, defaultRandN)
	}
	o.State = StateRetrying
	o.RunAt = now.Add(delay)
}

// reportOutcome calls OnOutcome, logging instead of crashing on a panic
// (a method rather than a closure per job).
func (w *Worker) reportOutcome(info JobInfo, o *Outcome) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("worker hook panicked; ignored", "worker", w.o.ID, "hook", "OnOutcome", "panic", v)
		}
	}()
	w.o.OnOutcome(info, *o)
}

// reportStored calls OnStored with a stored run's outcome, logging instead
// of crashing on a panic.
func (w *Worker) reportStored(r *run) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("worker hook panicked; ignored", "worker", w.o.ID, "hook", "OnStored", "panic", v)
		}
	}()
	w.o.OnStored(r.info, r.out)
}

// safely runs a check that walks a user error's chain, which calls user
// Unwrap and As methods: a panic in them reads as false.
func safely(check func() bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return check()
}
