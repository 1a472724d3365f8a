package redis

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// argBuilder lays out the arguments of one large script call with few
// allocations: each argument is a *string (go-redis writes it without
// boxing), either pointing at a string that already exists (an id, a task, a
// constant) or at a slice of one buffer that holds every argument the
// builder computed (keys, index members, encoded fields).
type argBuilder struct {
	args []any
	buf  []byte
	// fix lists the arguments that are slices of buf: args[i] is set once
	// buf is complete (appending to buf may move it).
	fix []argSpan
}

type argSpan struct{ i, start, end int }

func newArgBuilder(args, bytes int) *argBuilder {
	return &argBuilder{args: make([]any, 0, args), buf: make([]byte, 0, bytes), fix: make([]argSpan, 0, args)}
}

// str adds *s as the next argument; s must not change until the call is done.
func (a *argBuilder) str(s *string) { a.args = append(a.args, s) }

// span adds buf[start:] (what was appended since start) as the next argument.
func (a *argBuilder) span(start int) { a.spanOf(start, len(a.buf)) }

// spanOf adds buf[start:end] as the next argument.
func (a *argBuilder) spanOf(start, end int) {
	a.fix = append(a.fix, argSpan{len(a.args), start, end})
	a.args = append(a.args, nil)
}

// int adds n as the next argument.
func (a *argBuilder) int(n int) {
	s := len(a.buf)
	a.buf = strconv.AppendInt(a.buf, int64(n), 10)
	a.span(s)
}

// placeholder adds an argument to be set later with set; it returns its index.
func (a *argBuilder) placeholder() int {
	a.args = append(a.args, nil)
	return len(a.args) - 1
}

// done returns the arguments, every span pointing into one string.
func (a *argBuilder) done() []any {
	all := string(a.buf)
	strs := make([]string, len(a.fix))
	for k, f := range a.fix {
		strs[k] = all[f.start:f.end]
		a.args[f.i] = &strs[k]
	}
	return a.args
}

// appendTimeKey appends timeKey(t).
func appendTimeKey(b []byte, t time.Time) []byte {
	return appendHex16(b, uint64(t.UnixMicro())^signBit)
}

// appendPrioKey appends prioKey(p).
func appendPrioKey(b []byte, p int) []byte {
	return appendHex16(b, ^(uint64(int64(p)) ^ signBit))
}

func appendHex16(b []byte, u uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[(u>>uint(i))&0xf])
	}
	return b
}

// appendStatic appends field d of j (clamped): the msgpack array
// msgpack.Marshal makes of static, byte for byte (TestAppendStaticMatchesMsgpack),
// written without reflection. A job with metadata is encoded by msgpack.
func appendStatic(b []byte, j *backend.Job) ([]byte, error) {
	if len(j.Meta) > 0 {
		d, err := msgpack.Marshal(static{Signature: j.Signature, Args: j.Args, Timeout: j.Timeout,
			TimeoutPolicy: j.TimeoutPolicy, StoreResult: j.StoreResult, Queue: j.Queue, Created: timeWord(j.CreatedAt), Meta: j.Meta})
		if err != nil {
			return b, fmt.Errorf("encode job %s: %w", j.ID, err)
		}
		return append(b, d...), nil
	}
	b = append(b, 0x98) // fixarray of 8
	b = mpString(b, j.Signature)
	b = mpBytes(b, j.Args)
	b = mpInt(b, int64(j.Timeout))
	b = mpString(b, string(j.TimeoutPolicy))
	if j.StoreResult {
		b = append(b, 0xc3)
	} else {
		b = append(b, 0xc2)
	}
	b = mpString(b, j.Queue)
	b = mpUint(b, timeWord(j.CreatedAt))
	return append(b, 0xc0), nil // no metadata
}

func mpString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

func mpBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, 0xc0)
	}
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, p...)
}

// mpUint and mpInt write 64-bit integers as msgpack does by default (v5,
// without compact integers): always 9 bytes.
func mpUint(b []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

func mpInt(b []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

// plainJob reports whether j (clamped) has none of the fields a fresh job
// leaves empty besides its attempt and max attempts: started, finished,
// lease, outcome, history. Its record is written without restFields.
func plainJob(j *backend.Job) bool {
	return j.StartedAt.IsZero() && j.FinishedAt.IsZero() && j.LeaseOwner == "" && j.LeaseToken == 0 &&
		j.LeaseUntil.IsZero() && len(j.Result) == 0 && j.Error == "" && len(j.ErrorChain) == 0 &&
		j.PanicStack == "" && len(j.Attempts) == 0
}
