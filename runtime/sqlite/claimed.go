package sqlite

import (
	"fmt"
	"strings"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// claimColumns is what a claim returns of each job after its rowid: what a
// worker runs the job with, its metadata, and its history and error chain (NULL until a
// first attempt ends), which are decoded so that a claim still quarantines a
// job whose history cannot be read. The job's result, error, panic stack and
// unique key are not read (the contract lets a claim leave them empty; Get
// returns them); the state and lease fields are the claim's own values,
// filled in from the request. Returning every column cost a third of a claim.
const claimColumns = `id, task, signature, args, queue, priority, attempt, max_attempts,
	run_at, timeout, timeout_policy, store_result, created_at, lease_token, error_chain, attempts, meta`

// claimColumnCount is the number of columns in claimColumns.
const claimColumnCount = 17

// claimScanner reads claimed rows, reusing its scan buffers from row to row.
type claimScanner struct {
	rowid any
	v     [claimColumnCount]any
	dest  [1 + claimColumnCount]any
}

func newClaimScanner() *claimScanner {
	s := &claimScanner{}
	s.dest[0] = &s.rowid
	for i := range s.v {
		s.dest[1+i] = &s.v[i]
	}
	return s
}

// scan reads one row of "rowid, " + claimColumns into a running job leased
// by req. A row whose values cannot be read gives a *corruptError naming the
// job, with the rowid that names the row even when its id cannot be read.
func (s *claimScanner) scan(rows rowScanner, req *backend.ClaimRequest) (int64, *backend.Job, error) {
	clear(s.v[:])
	s.rowid = nil
	if err := rows.Scan(s.dest[:]...); err != nil {
		return 0, nil, err
	}
	rowid, ok := s.rowid.(int64)
	if !ok {
		return 0, nil, fmt.Errorf("rowid is %T, not an integer", s.rowid)
	}
	v := s.v[:]
	var d rowDecoder
	j := &backend.Job{
		ID:            d.text("id", v[0]),
		Task:          d.text("task", v[1]),
		Signature:     d.text("signature", v[2]),
		Args:          d.blob("args", v[3]),
		Queue:         d.text("queue", v[4]),
		Priority:      d.int("priority", v[5]),
		State:         backend.StateRunning,
		Attempt:       d.int("attempt", v[6]),
		MaxAttempts:   d.int("max_attempts", v[7]),
		RunAt:         d.time("run_at", v[8]),
		Timeout:       time.Duration(d.int64("timeout", v[9])),
		TimeoutPolicy: backend.TimeoutPolicy(d.text("timeout_policy", v[10])),
		StoreResult:   d.int64("store_result", v[11]) != 0,
		CreatedAt:     d.time("created_at", v[12]),
		LeaseToken:    d.int64("lease_token", v[13]),
		// The claim's UPDATE stored these, clamped as nanos clamps them.
		StartedAt:  fromNanos(nanos(req.Now)),
		LeaseOwner: req.Worker,
		LeaseUntil: fromNanos(nanos(req.Now.Add(req.LeaseFor))),
	}
	chain := d.blob("error_chain", v[14])
	attempts := d.blob("attempts", v[15])
	meta := d.blob("meta", v[16])
	if len(d.bad) > 0 {
		return rowid, j, &corruptError{id: j.ID, what: strings.Join(d.bad, "; ")}
	}
	var err error
	if j.ErrorChain, err = decodeStrings(chain); err != nil {
		return rowid, j, &corruptError{id: j.ID, what: "error_chain", err: err}
	}
	if j.Attempts, err = decodeAttempts(attempts); err != nil {
		return rowid, j, &corruptError{id: j.ID, what: "attempts", err: err}
	}
	if j.Meta, err = decodeMeta(meta); err != nil {
		return rowid, j, &corruptError{id: j.ID, what: "meta", err: err}
	}
	return rowid, j, nil
}
