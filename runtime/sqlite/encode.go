package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Stored encodings.
//
// attempts is a concatenation of records, each a uvarint length followed by
// that many bytes: uvarint number, varint started and finished (unix ns),
// then worker, outcome and error as uvarint-length-prefixed strings. Fields
// added later go at the end of a record, and readers skip what they do not
// know. Because records are self-delimiting, Complete appends one with
// attempts || ? and never reads the row. The trade-off against JSON: about a
// third of the size and no parsing cost, but SQLite's json functions cannot
// look inside and the sqlite3 shell shows bytes.
//
// error_chain is the same string encoding repeated: a uvarint length and the
// bytes of each message.

// nanos converts t to stored unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos converts stored unix nanoseconds back; 0 is the zero time.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendAttempt appends a's record to b.
func appendAttempt(b []byte, a backend.Attempt) []byte {
	var rec [64]byte
	r := rec[:0]
	r = binary.AppendUvarint(r, uint64(a.Number))
	r = binary.AppendVarint(r, nanos(a.StartedAt))
	r = binary.AppendVarint(r, nanos(a.FinishedAt))
	r = appendString(r, a.Worker)
	r = appendString(r, a.Outcome)
	r = appendString(r, a.Error)
	b = binary.AppendUvarint(b, uint64(len(r)))
	return append(b, r...)
}

func encodeAttempts(as []backend.Attempt) []byte {
	if len(as) == 0 {
		return nil
	}
	var b []byte
	for _, a := range as {
		b = appendAttempt(b, a)
	}
	return b
}

var errTruncated = errors.New("truncated")

// reader decodes the stored encodings; its first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("length %d exceeds the %d bytes left", n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func decodeAttempts(b []byte) ([]backend.Attempt, error) {
	out := []backend.Attempt{}
	r := reader{b: b}
	for len(r.b) > 0 && r.err == nil {
		rec := reader{b: r.bytes()}
		if r.err != nil {
			break
		}
		var a backend.Attempt
		a.Number = int(rec.uvarint())
		a.StartedAt = fromNanos(rec.varint())
		a.FinishedAt = fromNanos(rec.varint())
		a.Worker = string(rec.bytes())
		a.Outcome = string(rec.bytes())
		a.Error = string(rec.bytes())
		if rec.err != nil {
			return nil, fmt.Errorf("attempt record %d: %w", len(out)+1, rec.err)
		}
		out = append(out, a)
	}
	if r.err != nil {
		return nil, fmt.Errorf("attempt record %d: %w", len(out)+1, r.err)
	}
	return out, nil
}

func encodeStrings(ss []string) []byte {
	if len(ss) == 0 {
		return nil
	}
	var b []byte
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func decodeStrings(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []string
	r := reader{b: b}
	for len(r.b) > 0 {
		s := r.bytes()
		if r.err != nil {
			return nil, fmt.Errorf("message %d: %w", len(out)+1, r.err)
		}
		out = append(out, string(s))
	}
	return out, nil
}

// nullString stores "" as NULL (used for unique_key, whose index is partial).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func boolInt(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// jobColumns is the select list every read of a full job uses, in the order
// scanJob expects.
const jobColumns = `id, task, signature, args, queue, priority, state, attempt, max_attempts,
	run_at, timeout, timeout_policy, store_result, coalesce(unique_key, ''), unique_until,
	created_at, started_at, finished_at, result, error, error_chain, panic_stack, attempts,
	lease_owner, lease_token, lease_until`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanJob reads one row of jobColumns. A row whose stored contents cannot be
// decoded gives a *corruptError naming the job.
func scanJob(s rowScanner) (*backend.Job, error) {
	var (
		j                                      backend.Job
		state, policy                          string
		runAt, timeout, uniqueUntil            int64
		created, started, finished, leaseUntil int64
		storeResult                            int64
		chain, attempts                        []byte
	)
	if err := s.Scan(&j.ID, &j.Task, &j.Signature, &j.Args, &j.Queue, &j.Priority, &state, &j.Attempt,
		&j.MaxAttempts, &runAt, &timeout, &policy, &storeResult, &j.UniqueKey, &uniqueUntil,
		&created, &started, &finished, &j.Result, &j.Error, &chain, &j.PanicStack, &attempts,
		&j.LeaseOwner, &j.LeaseToken, &leaseUntil); err != nil {
		return nil, err
	}
	j.State = backend.State(state)
	j.RunAt = fromNanos(runAt)
	j.Timeout = time.Duration(timeout)
	j.TimeoutPolicy = backend.TimeoutPolicy(policy)
	j.StoreResult = storeResult != 0
	j.UniqueUntil = fromNanos(uniqueUntil)
	j.CreatedAt = fromNanos(created)
	j.StartedAt = fromNanos(started)
	j.FinishedAt = fromNanos(finished)
	j.LeaseUntil = fromNanos(leaseUntil)
	if !j.State.Valid() {
		return &j, &corruptError{id: j.ID, what: fmt.Sprintf("unknown state %q", state)}
	}
	var err error
	if j.ErrorChain, err = decodeStrings(chain); err != nil {
		return &j, &corruptError{id: j.ID, what: "error_chain", err: err}
	}
	if j.Attempts, err = decodeAttempts(attempts); err != nil {
		return &j, &corruptError{id: j.ID, what: "attempts", err: err}
	}
	return &j, nil
}

// corruptError reports a row whose stored contents cannot be decoded.
type corruptError struct {
	id   string
	what string
	err  error
}

func (e *corruptError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("job %s is corrupt: %s", e.id, e.what)
	}
	return fmt.Sprintf("job %s is corrupt: cannot decode %s: %v", e.id, e.what, e.err)
}

func (e *corruptError) Unwrap() error { return e.err }
