package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
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

// nanos converts t to stored unix nanoseconds; the zero time is 0. Times
// outside [backend.MinTime, backend.MaxTime] are clamped to it (their Unix
// nanoseconds would overflow int64), as the contract says.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return backend.ClampTime(t).UnixNano()
}

// fromNanos converts stored unix nanoseconds back; 0 is the zero time. A
// value outside the stored range (written by hand, or damaged) reads as the
// nearest end of it, as nanos would have stored it, so a record reads the
// same after it is written back.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return backend.ClampTime(time.Unix(0, n))
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
	lease_owner, lease_token, lease_until, meta`

// jobColumnCount is the number of columns in jobColumns.
const jobColumnCount = 27

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanJob reads one row of jobColumns. A row whose stored contents cannot be
// decoded gives a *corruptError naming the job, with the job as far as it
// could be read.
func scanJob(s rowScanner) (*backend.Job, error) {
	var v [jobColumnCount]any
	dest := make([]any, jobColumnCount)
	for i := range v {
		dest[i] = &v[i]
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	return decodeRow(v[:])
}

// scanWithRowid reads one row of "rowid, " + jobColumns: the rowid names the
// row even when its id cannot be read.
func scanWithRowid(s rowScanner) (int64, *backend.Job, error) {
	var rowid any
	var v [jobColumnCount]any
	dest := make([]any, 1+jobColumnCount)
	dest[0] = &rowid
	for i := range v {
		dest[1+i] = &v[i]
	}
	if err := s.Scan(dest...); err != nil {
		return 0, nil, err
	}
	id, ok := rowid.(int64)
	if !ok {
		return 0, nil, fmt.Errorf("rowid is %T, not an integer", rowid)
	}
	j, err := decodeRow(v[:])
	return id, j, err
}

// decodeRow converts the values of one row of jobColumns. The columns are
// read as whatever SQLite holds, never with a conversion that can fail, so
// that a value of the wrong type (text in an integer column, a real number
// where an integer overflowed) is reported as the job being corrupt, naming
// the column, instead of failing the whole query.
func decodeRow(v []any) (*backend.Job, error) {
	var (
		j backend.Job
		d rowDecoder
	)
	j.ID = d.text("id", v[0])
	j.Task = d.text("task", v[1])
	j.Signature = d.text("signature", v[2])
	j.Args = d.blob("args", v[3])
	j.Queue = d.text("queue", v[4])
	j.Priority = d.int("priority", v[5])
	state := d.text("state", v[6])
	j.State = backend.State(state)
	j.Attempt = d.int("attempt", v[7])
	j.MaxAttempts = d.int("max_attempts", v[8])
	j.RunAt = d.time("run_at", v[9])
	j.Timeout = time.Duration(d.int64("timeout", v[10]))
	j.TimeoutPolicy = backend.TimeoutPolicy(d.text("timeout_policy", v[11]))
	j.StoreResult = d.int64("store_result", v[12]) != 0
	j.UniqueKey = d.text("unique_key", v[13])
	j.UniqueUntil = d.time("unique_until", v[14])
	j.CreatedAt = d.time("created_at", v[15])
	j.StartedAt = d.time("started_at", v[16])
	j.FinishedAt = d.time("finished_at", v[17])
	j.Result = d.blob("result", v[18])
	j.Error = d.text("error", v[19])
	chain := d.blob("error_chain", v[20])
	j.PanicStack = d.text("panic_stack", v[21])
	attempts := d.blob("attempts", v[22])
	j.LeaseOwner = d.text("lease_owner", v[23])
	j.LeaseToken = d.int64("lease_token", v[24])
	j.LeaseUntil = d.time("lease_until", v[25])
	meta := d.blob("meta", v[26])
	if !j.State.Valid() {
		d.bad = append(d.bad, fmt.Sprintf("unknown state %q", state))
	}
	if len(d.bad) > 0 {
		return &j, &corruptError{id: j.ID, what: strings.Join(d.bad, "; ")}
	}
	var err error
	if j.ErrorChain, err = decodeStrings(chain); err != nil {
		return &j, &corruptError{id: j.ID, what: "error_chain", err: err}
	}
	if j.Attempts, err = decodeAttempts(attempts); err != nil {
		return &j, &corruptError{id: j.ID, what: "attempts", err: err}
	}
	if j.Meta, err = decodeMeta(meta); err != nil {
		return &j, &corruptError{id: j.ID, what: "meta", err: err}
	}
	return &j, nil
}

// rowDecoder converts column values, collecting what it cannot convert.
type rowDecoder struct {
	bad []string
}

func (d *rowDecoder) fail(col string, v any, want string) {
	d.bad = append(d.bad, fmt.Sprintf("column %s holds %s, not %s", col, describe(v), want))
}

// describe names a stored value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the real number %g", x)
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("the text %q", x)
	case []byte:
		return fmt.Sprintf("a blob of %d bytes", len(x))
	}
	return fmt.Sprintf("a %T", v)
}

func (d *rowDecoder) int64(col string, v any) int64 {
	if x, ok := v.(int64); ok {
		return x
	}
	d.fail(col, v, "an integer")
	return 0
}

func (d *rowDecoder) int(col string, v any) int {
	x := d.int64(col, v)
	if int64(int(x)) != x {
		d.fail(col, v, "an integer in the range of int")
		return 0
	}
	return int(x)
}

func (d *rowDecoder) time(col string, v any) time.Time {
	x, ok := v.(int64)
	if !ok {
		d.fail(col, v, "a time in unix nanoseconds")
		return time.Time{}
	}
	return fromNanos(x)
}

func (d *rowDecoder) text(col string, v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	d.fail(col, v, "text")
	return ""
}

func (d *rowDecoder) blob(col string, v any) []byte {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	d.fail(col, v, "a blob")
	return nil
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
