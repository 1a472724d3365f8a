package redis

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/internal/safemsgpack"
	"github.com/nuvom/nuvom/runtime/backend"
)

// A job is stored as one Redis hash. Times and priorities are stored as 16
// lowercase hex digits whose byte order is their numeric order (the sign bit
// flipped; priorities also inverted, so that higher sorts first), so that the
// Lua scripts compare and index them as strings, exactly, without the
// float64 numbers of Lua (which cannot hold a microsecond timestamp of the
// year 2262). Hash fields (the scripts read and write the state fields; what
// only the client reads is packed into the two msgpack fields d and o, so
// that a record has few fields: every field costs Redis time on each read
// and write):
//
//	tk  task          st  state         pk  priority key  ra  run-at
//	at  attempt       ma  max attempts  v   version (every write)
//	sa  started       fa  finished      lo  lease owner   lt  lease token
//	lu  lease until   h   attempts (concatenated msgpack)
//	uk  unique key    uu  unique until  ux  unique-key index key (unique jobs only)
//	d   msgpack of the static part (signature, args, timeout, queue, created, ...)
//	o   msgpack of the outcome (result, error, error chain, panic stack); absent or empty: none
//
// Records written before d held the queue and creation time have fields q
// and cr instead; they are still read.

const signBit = uint64(1) << 63

// timeKey returns the sortable key of t (microseconds since the Unix epoch).
func timeKey(t time.Time) string {
	var b [8]byte
	u := uint64(t.UnixMicro()) ^ signBit
	for i := 7; i >= 0; i-- {
		b[i] = byte(u)
		u >>= 8
	}
	return hex.EncodeToString(b[:])
}

// optTimeKey is timeKey, or "" for the zero time.
func optTimeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return timeKey(t)
}

// parseTimeKey reverses timeKey; "" is the zero time.
func parseTimeKey(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	u, err := parseHex16(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time key %q: %w", s, err)
	}
	t := time.UnixMicro(int64(u ^ signBit)).UTC()
	if t.Equal(time.Time{}) {
		return time.Time{}, nil
	}
	return t, nil
}

// timeWord is t in microseconds with the sign bit flipped, 0 for the zero time.
func timeWord(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMicro()) ^ signBit
}

func parseTimeWord(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(u ^ signBit)).UTC()
}

func parseHex16(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, errors.New("not 16 hex digits")
	}
	return strconv.ParseUint(s, 16, 64)
}

// prioKey returns the key of priority p: higher priorities sort first.
func prioKey(p int) string {
	var b [16]byte
	return string(appendPrioKey(b[:0], p))
}

func parsePrioKey(s string) (int, error) {
	u, err := parseHex16(s)
	if err != nil {
		return 0, fmt.Errorf("priority key %q: %w", s, err)
	}
	return int(int64(^u ^ signBit)), nil
}

// static is the part of a job the scripts never look at. It is a msgpack
// array, not a map, to stay short: Redis keeps a hash compact (listpack)
// only while every value is at most hash-max-listpack-value (64) bytes.
type static struct {
	_msgpack      struct{}              `msgpack:",as_array"` //nolint:unused // msgpack option
	Signature     string                `msgpack:"s"`
	Args          []byte                `msgpack:"a"`
	Timeout       time.Duration         `msgpack:"t"`
	TimeoutPolicy backend.TimeoutPolicy `msgpack:"p"`
	StoreResult   bool                  `msgpack:"r"`
	Queue         string                `msgpack:"q,omitempty"`
	Created       uint64                `msgpack:"c,omitempty"` // timeWord
	// Meta is the job's metadata (backend.Job.Meta), nil when empty. An
	// as_array struct decodes only an array of exactly its field count
	// (records written as maps, before the array layout, still decode): a
	// new field needs a new version of field d.
	Meta map[string]string `msgpack:"m,omitempty"`
}

// outcome is what a finished attempt left, as stored in field o.
type outcome struct {
	Result     []byte   `msgpack:"r,omitempty"`
	Error      string   `msgpack:"e,omitempty"`
	ErrorChain []string `msgpack:"c,omitempty"`
	PanicStack string   `msgpack:"p,omitempty"`
}

// encodeOutcome returns field o: "" when there is nothing to keep.
func encodeOutcome(result []byte, errMsg string, chain []string, stack string) (string, error) {
	if len(result) == 0 && errMsg == "" && len(chain) == 0 && stack == "" {
		return "", nil
	}
	b, err := msgpack.Marshal(outcome{Result: result, Error: errMsg, ErrorChain: chain, PanicStack: stack})
	if err != nil {
		return "", fmt.Errorf("encode outcome: %w", err)
	}
	return string(b), nil
}

// wireAttempt is an attempt as stored in field h.
// Its times are microseconds with the sign bit flipped (0: the zero time),
// to keep the record small (Redis keeps a hash compact while every value is
// at most hash-max-listpack-value, 64 bytes, long).
type wireAttempt struct {
	_msgpack   struct{} `msgpack:",as_array"` //nolint:unused // msgpack option
	Number     int      `msgpack:"n"`
	StartedAt  uint64   `msgpack:"s"`
	FinishedAt uint64   `msgpack:"f"`
	Worker     string   `msgpack:"w"`
	Outcome    string   `msgpack:"o"`
	Error      string   `msgpack:"e"`
}

func encodeAttempt(a backend.Attempt) (string, error) {
	b, err := msgpack.Marshal(wireAttempt{Number: a.Number, StartedAt: timeWord(backend.ClampTime(a.StartedAt)),
		FinishedAt: timeWord(backend.ClampTime(a.FinishedAt)), Worker: a.Worker, Outcome: a.Outcome, Error: a.Error})
	if err != nil {
		return "", fmt.Errorf("encode attempt %d: %w", a.Number, err)
	}
	return string(b), nil
}

func encodeAttempts(as []backend.Attempt) (string, error) {
	var buf bytes.Buffer
	for _, a := range as {
		s, err := encodeAttempt(a)
		if err != nil {
			return "", err
		}
		buf.WriteString(s)
	}
	return buf.String(), nil
}

func decodeAttempts(s string) ([]backend.Attempt, error) {
	out := []backend.Attempt{}
	dec := msgpack.NewDecoder(bytes.NewReader([]byte(s)))
	for {
		var w wireAttempt
		if err := dec.Decode(&w); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("attempt %d: %w", len(out)+1, err)
		}
		out = append(out, backend.Attempt{Number: w.Number, StartedAt: parseTimeWord(w.StartedAt), FinishedAt: parseTimeWord(w.FinishedAt),
			Worker: w.Worker, Outcome: w.Outcome, Error: w.Error})
	}
}

// restFields returns every hash field of j (clamped already) as name, value
// pairs, without the ones the enqueue script sets itself (tk st pk ra uk uu ux).
func restFields(j *backend.Job) ([]any, error) {
	d, err := appendStatic(nil, j)
	if err != nil {
		return nil, err
	}
	h, err := encodeAttempts(j.Attempts)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	o, err := encodeOutcome(j.Result, j.Error, j.ErrorChain, j.PanicStack)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	all := []any{"d", string(d), "at", j.Attempt, "ma", j.MaxAttempts,
		"sa", optTimeKey(j.StartedAt), "fa", optTimeKey(j.FinishedAt), "lo", j.LeaseOwner,
		"lt", j.LeaseToken, "lu", optTimeKey(j.LeaseUntil), "o", o, "h", h}
	// A missing field reads as empty (or 0): leave empty ones out, to save
	// memory and work.
	out := all[:0]
	for i := 0; i < len(all); i += 2 {
		switch v := all[i+1].(type) {
		case string:
			if v == "" {
				continue
			}
		case int:
			if v == 0 {
				continue
			}
		case int64:
			if v == 0 {
				continue
			}
		}
		out = append(out, all[i], all[i+1])
	}
	return out, nil
}

// mutableFields returns the fields a compare-and-set rewrite of j sets.
func mutableFields(j *backend.Job) ([]any, error) {
	h, err := encodeAttempts(j.Attempts)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	o, err := encodeOutcome(j.Result, j.Error, j.ErrorChain, j.PanicStack)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return []any{"st", string(j.State), "at", j.Attempt, "ma", j.MaxAttempts, "ra", timeKey(j.RunAt),
		"sa", optTimeKey(j.StartedAt), "fa", optTimeKey(j.FinishedAt), "lo", j.LeaseOwner,
		"lt", j.LeaseToken, "lu", optTimeKey(j.LeaseUntil), "o", o, "h", h}, nil
}

// decodeJob builds a job from its hash fields. On error it returns what could
// be read, in state quarantined, with Error saying what could not.
func decodeJob(id string, f map[string]string) (*backend.Job, string, error) {
	j := &backend.Job{ID: id, Queue: f["q"], Task: f["tk"], State: backend.State(f["st"]), Attempts: []backend.Attempt{}}
	version := f["v"]
	var errs []error
	ints := func(name string, dst *int) {
		if s := f[name]; s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("field %s: %w", name, err))
			}
			*dst = n
		}
	}
	ints("at", &j.Attempt)
	ints("ma", &j.MaxAttempts)
	if s := f["lt"]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field lt: %w", err))
		}
		j.LeaseToken = n
	}
	times := func(name string, dst *time.Time) {
		t, err := parseTimeKey(f[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", name, err))
		}
		*dst = t
	}
	times("ra", &j.RunAt)
	times("cr", &j.CreatedAt)
	times("uu", &j.UniqueUntil)
	times("sa", &j.StartedAt)
	times("fa", &j.FinishedAt)
	times("lu", &j.LeaseUntil)
	if p, err := parsePrioKey(f["pk"]); err != nil {
		errs = append(errs, err)
	} else {
		j.Priority = p
	}
	if !j.State.Valid() {
		errs = append(errs, fmt.Errorf("unknown state %q", f["st"]))
	}
	var st static
	if err := safemsgpack.Unmarshal([]byte(f["d"]), &st); err != nil {
		errs = append(errs, fmt.Errorf("field d: %w", err))
	} else {
		j.Signature, j.Args, j.Timeout, j.TimeoutPolicy, j.StoreResult = st.Signature, st.Args, st.Timeout, st.TimeoutPolicy, st.StoreResult
		j.Meta = st.Meta
		if j.Queue == "" {
			j.Queue = st.Queue
		}
		if _, ok := f["cr"]; !ok {
			j.CreatedAt = parseTimeWord(st.Created)
		}
	}
	j.UniqueKey = f["uk"]
	j.LeaseOwner = f["lo"]
	if o := f["o"]; o != "" {
		var out outcome
		if err := safemsgpack.Unmarshal([]byte(o), &out); err != nil {
			errs = append(errs, fmt.Errorf("field o: %w", err))
		} else {
			j.Result, j.Error, j.ErrorChain, j.PanicStack = out.Result, out.Error, out.ErrorChain, out.PanicStack
		}
	}
	if as, err := decodeAttempts(f["h"]); err != nil {
		errs = append(errs, fmt.Errorf("field h: %w", err))
	} else {
		j.Attempts = as
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		j.State = backend.StateQuarantined
		j.Error = fmt.Sprintf("redis: stored record of job %s cannot be read: %v", id, err)
		j.LeaseOwner, j.LeaseUntil = "", time.Time{}
		return j, version, err
	}
	return j, version, nil
}
