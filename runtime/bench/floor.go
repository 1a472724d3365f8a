package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the same driver as the SQLite backend
)

// FloorConfig says what the floor measures.
type FloorConfig struct {
	// Path is the database file to create; it must not exist yet.
	Path string
	// Synchronous is SQLite's synchronous mode, NORMAL (default) or FULL.
	Synchronous string
	// Jobs, BatchSize and LatencySamples mean what they mean in Config.
	Jobs, BatchSize, LatencySamples int
	// ClaimLimit caps one claim; default 500.
	ClaimLimit int
	// Handlers is the number of goroutines that run jobs; default 16.
	Handlers int
}

// floorSchema is the least a queue stores: the job, its state, its lease and
// its result. One partial index serves the claims.
const floorSchema = `CREATE TABLE jobs (
		id          INTEGER PRIMARY KEY,
		queue       TEXT    NOT NULL,
		args        BLOB,
		state       INTEGER NOT NULL DEFAULT 0,
		run_at      INTEGER NOT NULL,
		attempt     INTEGER NOT NULL DEFAULT 0,
		lease_until INTEGER NOT NULL DEFAULT 0,
		finished_at INTEGER NOT NULL DEFAULT 0,
		result      BLOB
	);
	CREATE INDEX jobs_ready ON jobs (queue, run_at, id) WHERE state = 0`

const (
	floorInsert = `INSERT INTO jobs (queue, args, run_at) VALUES (?, ?, ?)`
	floorClaim  = `UPDATE jobs SET state = 1, attempt = attempt + 1, lease_until = ?1
		WHERE id IN (SELECT id FROM jobs WHERE state = 0 AND queue = ?2 AND run_at <= ?3
			ORDER BY run_at, id LIMIT ?4)
		RETURNING id, args`
	floorDone = `UPDATE jobs SET state = 2, finished_at = ?, result = ? WHERE id = ? AND state = 1`
)

// RunFloor measures the floor: a bare SQLite queue loop on the same driver
// and settings as the SQLite backend (modernc.org/sqlite, WAL, the given
// synchronous mode, one connection), with none of the engine. Enqueue is one
// INSERT per job, one transaction per call; the burn-down claims up to
// ClaimLimit jobs with one UPDATE ... RETURNING, hands them to Handlers
// goroutines, and marks each batch of finished jobs done, with its result, in
// one transaction. Pickup latency is enqueue to handler start on an idle
// queue, the claim loop woken by a channel. Its Report compares with Run's:
// the engine's figures divided by these are its ratios to the floor.
func RunFloor(ctx context.Context, cfg FloorConfig) (Report, error) {
	if cfg.Path == "" {
		return Report{}, errors.New("bench floor: no path")
	}
	if cfg.Jobs < 0 {
		return Report{}, fmt.Errorf("bench floor: jobs %d is negative", cfg.Jobs)
	}
	if cfg.Synchronous == "" {
		cfg.Synchronous = "NORMAL"
	}
	cfg.Synchronous = strings.ToUpper(cfg.Synchronous)
	if cfg.Synchronous != "NORMAL" && cfg.Synchronous != "FULL" {
		return Report{}, fmt.Errorf("bench floor: synchronous %q is not NORMAL or FULL", cfg.Synchronous)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.ClaimLimit <= 0 {
		cfg.ClaimLimit = 500
	}
	if cfg.Handlers <= 0 {
		cfg.Handlers = 16
	}
	if cfg.LatencySamples == 0 {
		cfg.LatencySamples = 200
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+cfg.Synchronous+")")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", cfg.Path+"?"+q.Encode())
	if err != nil {
		return Report{}, fmt.Errorf("bench floor: open: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if _, err := db.ExecContext(ctx, floorSchema); err != nil {
		return Report{}, fmt.Errorf("bench floor: create schema: %w", err)
	}
	f := &floor{db: db, cfg: cfg}
	rep := Report{Jobs: cfg.Jobs, Concurrency: cfg.Handlers, BatchSize: cfg.BatchSize}
	if cfg.Jobs > 0 {
		if err := f.enqueue(ctx, "bench", cfg.Jobs, &rep); err != nil {
			return rep, err
		}
		start := time.Now()
		cpu0 := ProcessCPU()
		n, err := f.burnDown(ctx, "bench", nil)
		rep.BurnDown = time.Since(start)
		if cpu0 > 0 {
			rep.BurnDownCPU = ProcessCPU() - cpu0
		}
		if err != nil {
			return rep, err
		}
		if n != cfg.Jobs {
			return rep, fmt.Errorf("bench floor: burned down %d of %d jobs", n, cfg.Jobs)
		}
	}
	if cfg.LatencySamples > 0 {
		if err := f.pickup(ctx, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

type floor struct {
	db  *sql.DB
	cfg FloorConfig
}

// enqueue inserts n jobs as Run does: a tenth (at most 1,000) one per
// transaction, the rest BatchSize per transaction.
func (f *floor) enqueue(ctx context.Context, queue string, n int, rep *Report) error {
	args := []byte{0x90}
	ins, err := f.db.PrepareContext(ctx, floorInsert)
	if err != nil {
		return fmt.Errorf("bench floor: prepare insert: %w", err)
	}
	defer ins.Close()
	single := min(n/10, 1000)
	start := time.Now()
	for range single {
		if _, err := ins.ExecContext(ctx, queue, args, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("bench floor: insert: %w", err)
		}
	}
	rep.SingleEnqueued, rep.SingleEnqueue = single, time.Since(start)
	start = time.Now()
	for left := n - single; left > 0; {
		k := min(left, f.cfg.BatchSize)
		if err := f.inTx(ctx, func(tx *sql.Tx) error {
			st := tx.StmtContext(ctx, ins)
			now := time.Now().UnixNano()
			for range k {
				if _, err := st.ExecContext(ctx, queue, args, now); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("bench floor: insert a batch: %w", err)
		}
		left -= k
	}
	rep.BatchEnqueued, rep.BatchEnqueue = n-single, time.Since(start)
	return nil
}

func (f *floor) inTx(ctx context.Context, do func(*sql.Tx) error) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := do(tx); err != nil {
		return err
	}
	return tx.Commit()
}

type floorJob struct {
	id   int64
	args []byte
}

type floorDoneJob struct {
	id     int64
	result []byte
	at     int64
}

// burnDown claims and runs jobs until a claim finds none and every claimed
// job is marked done; with wake set it instead runs until ctx ends, claiming
// again whenever wake signals. started, when set, is called as a handler
// starts a job. It returns the number of jobs marked done.
func (f *floor) burnDown(ctx context.Context, queue string, wake <-chan struct{}, started ...func()) (int, error) {
	claim, err := f.db.PrepareContext(ctx, floorClaim)
	if err != nil {
		return 0, fmt.Errorf("bench floor: prepare claim: %w", err)
	}
	defer claim.Close()
	done, err := f.db.PrepareContext(ctx, floorDone)
	if err != nil {
		return 0, fmt.Errorf("bench floor: prepare done: %w", err)
	}
	defer done.Close()

	jobs := make(chan floorJob, f.cfg.ClaimLimit)
	finished := make(chan floorDoneJob, f.cfg.ClaimLimit)
	var handlers sync.WaitGroup
	for range f.cfg.Handlers {
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			for j := range jobs {
				for _, s := range started {
					s()
				}
				finished <- floorDoneJob{id: j.id, result: []byte{0xc0}, at: time.Now().UnixNano()}
			}
		}()
	}
	// The completer marks finished jobs done, a batch per transaction.
	var (
		completed int
		compErr   error
		compDone  = make(chan struct{})
		freed     = make(chan int, 1024) // completer → claim loop: jobs marked done
	)
	go func() {
		defer close(compDone)
		batch := make([]floorDoneJob, 0, f.cfg.ClaimLimit)
		for d := range finished {
			batch = append(batch[:0], d)
		more:
			for len(batch) < f.cfg.ClaimLimit {
				select {
				case d, ok := <-finished:
					if !ok {
						break more
					}
					batch = append(batch, d)
				default:
					break more
				}
			}
			if compErr == nil {
				compErr = f.inTx(ctx, func(tx *sql.Tx) error {
					st := tx.StmtContext(ctx, done)
					for _, d := range batch {
						if _, err := st.ExecContext(ctx, d.at, d.result, d.id); err != nil {
							return err
						}
					}
					return nil
				})
			}
			completed += len(batch)
			freed <- len(batch)
		}
	}()

	// The claim loop keeps at most ClaimLimit jobs claimed and not done.
	held := 0
	var claimErr error
	for ctx.Err() == nil {
		for {
			select {
			case n := <-freed:
				held -= n
				continue
			default:
			}
			break
		}
		limit := f.cfg.ClaimLimit - held
		if limit < f.cfg.ClaimLimit/2 {
			held -= <-freed
			continue
		}
		got, err := f.claim(ctx, claim, queue, limit, jobs)
		if err != nil {
			claimErr = fmt.Errorf("bench floor: claim: %w", err)
			break
		}
		held += got
		if got > 0 {
			continue
		}
		if wake == nil {
			if held == 0 {
				break
			}
			held -= <-freed
			continue
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case n := <-freed:
			held -= n
		}
	}
	close(jobs)
	handlers.Wait()
	close(finished)
	<-compDone
	if claimErr != nil {
		return completed, claimErr
	}
	if compErr != nil {
		return completed, fmt.Errorf("bench floor: mark done: %w", compErr)
	}
	return completed, nil
}

// claim leases up to limit jobs and hands them to the handlers.
func (f *floor) claim(ctx context.Context, claim *sql.Stmt, queue string, limit int, jobs chan<- floorJob) (int, error) {
	now := time.Now()
	var got []floorJob
	err := f.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, claim).QueryContext(ctx, now.Add(time.Minute).UnixNano(), queue, now.UnixNano(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j floorJob
			if err := rows.Scan(&j.id, &j.args); err != nil {
				return err
			}
			got = append(got, j)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	for _, j := range got {
		jobs <- j
	}
	return len(got), nil
}

// pickup measures enqueue to handler start on an idle queue.
func (f *floor) pickup(ctx context.Context, rep *Report) error {
	ins, err := f.db.PrepareContext(ctx, floorInsert)
	if err != nil {
		return fmt.Errorf("bench floor: prepare insert: %w", err)
	}
	defer ins.Close()
	wake := make(chan struct{}, 1)
	startedAt := make(chan time.Time, 1)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	loopErr := make(chan error, 1)
	go func() {
		_, err := f.burnDown(lctx, "ping", wake, func() { startedAt <- time.Now() })
		if lctx.Err() != nil {
			err = nil
		}
		loopErr <- err
	}()
	samples := make([]time.Duration, 0, f.cfg.LatencySamples)
	for i := range f.cfg.LatencySamples {
		t0 := time.Now()
		if _, err := ins.ExecContext(ctx, "ping", []byte{0x90}, t0.UnixNano()); err != nil {
			stop()
			<-loopErr
			return fmt.Errorf("bench floor: insert ping %d: %w", i, err)
		}
		select {
		case wake <- struct{}{}:
		default:
		}
		select {
		case t := <-startedAt:
			samples = append(samples, t.Sub(t0))
		case err := <-loopErr:
			return fmt.Errorf("bench floor: pickup loop stopped: %w", err)
		case <-time.After(30 * time.Second):
			stop()
			<-loopErr
			return fmt.Errorf("bench floor: ping %d was not picked up within 30s", i)
		}
		// Wait until it is marked done, so that every sample starts on an idle queue.
		for {
			var state int
			if err := f.db.QueryRowContext(ctx, `SELECT state FROM jobs WHERE queue = 'ping' ORDER BY id DESC LIMIT 1`).Scan(&state); err != nil {
				stop()
				<-loopErr
				return fmt.Errorf("bench floor: read ping %d: %w", i, err)
			}
			if state == 2 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	stop()
	if err := <-loopErr; err != nil {
		return err
	}
	slices.Sort(samples)
	pct := func(p int) time.Duration { return samples[min(len(samples)-1, len(samples)*p/100)] }
	rep.PickupSamples = len(samples)
	rep.PickupP50, rep.PickupP95, rep.PickupP99, rep.PickupMax = pct(50), pct(95), pct(99), samples[len(samples)-1]
	return nil
}
