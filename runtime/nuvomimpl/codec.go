package nuvomimpl

import (
	"bytes"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ArgWriter encodes a job's arguments. Errors are sticky: the first one is
// returned by Bytes, so generated code can write every argument and check once.
type ArgWriter struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	err error
}

// NewArgWriter starts an argument list of n values.
func NewArgWriter(n int) *ArgWriter {
	w := &ArgWriter{}
	w.enc = msgpack.NewEncoder(&w.buf)
	w.enc.UseCompactInts(true)
	w.err = w.enc.EncodeArrayLen(n)
	return w
}

func (w *ArgWriter) keep(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

// Bool writes a bool.
func (w *ArgWriter) Bool(v bool) { w.keep(w.enc.EncodeBool(v)) }

// Int writes any signed integer.
func (w *ArgWriter) Int(v int64) { w.keep(w.enc.EncodeInt(v)) }

// Uint writes any unsigned integer.
func (w *ArgWriter) Uint(v uint64) { w.keep(w.enc.EncodeUint(v)) }

// Float32 writes a float32.
func (w *ArgWriter) Float32(v float32) { w.keep(w.enc.EncodeFloat32(v)) }

// Float64 writes a float64.
func (w *ArgWriter) Float64(v float64) { w.keep(w.enc.EncodeFloat64(v)) }

// String writes a string.
func (w *ArgWriter) String(v string) { w.keep(w.enc.EncodeString(v)) }

// Bytes writes a byte slice (nil stays nil).
func (w *ArgWriter) Bytes(v []byte) { w.keep(w.enc.EncodeBytes(v)) }

// Time writes a time.Time.
func (w *ArgWriter) Time(v time.Time) { w.keep(w.enc.EncodeTime(v)) }

// Duration writes a time.Duration as nanoseconds.
func (w *ArgWriter) Duration(v time.Duration) { w.keep(w.enc.EncodeInt(int64(v))) }

// Value writes any other serializable value (slices, maps, structs, pointers).
func (w *ArgWriter) Value(v any) { w.keep(w.enc.Encode(v)) }

// Finish returns the encoded arguments, or the first error met.
func (w *ArgWriter) Finish() ([]byte, error) {
	if w.err != nil {
		return nil, fmt.Errorf("encode args: %w", w.err)
	}
	return w.buf.Bytes(), nil
}

// ArgReader decodes a job's arguments. Errors are sticky: after the first one
// every read returns a zero value, and Err reports it.
type ArgReader struct {
	dec  *msgpack.Decoder
	task string
	i    int
	err  error
}

// NewArgReader starts reading the arguments of task from data, which must be an
// array of exactly n values (or, when n is 0, may be empty).
func NewArgReader(task string, data []byte, n int) *ArgReader {
	r := &ArgReader{dec: msgpack.NewDecoder(bytes.NewReader(data)), task: task, i: -1}
	if n == 0 && len(data) == 0 {
		return r // a task without parameters: an empty payload is an empty list
	}
	got, err := r.dec.DecodeArrayLen()
	switch {
	case err != nil:
		r.err = &DecodeError{Task: task, Arg: -1, Err: err}
	case got != n:
		r.err = &DecodeError{Task: task, Arg: -1, Err: fmt.Errorf("payload has %d args, the task takes %d", got, n)}
	}
	return r
}

func (r *ArgReader) next() bool {
	r.i++
	return r.err == nil
}

func (r *ArgReader) keep(err error) {
	if r.err == nil && err != nil {
		r.err = &DecodeError{Task: r.task, Arg: r.i, Err: err}
	}
}

// Bool reads a bool.
func (r *ArgReader) Bool() bool {
	if !r.next() {
		return false
	}
	v, err := r.dec.DecodeBool()
	r.keep(err)
	return v
}

// Int reads a signed integer.
func (r *ArgReader) Int() int64 {
	if !r.next() {
		return 0
	}
	v, err := r.dec.DecodeInt64()
	r.keep(err)
	return v
}

// Uint reads an unsigned integer.
func (r *ArgReader) Uint() uint64 {
	if !r.next() {
		return 0
	}
	v, err := r.dec.DecodeUint64()
	r.keep(err)
	return v
}

// Float32 reads a float32.
func (r *ArgReader) Float32() float32 {
	if !r.next() {
		return 0
	}
	v, err := r.dec.DecodeFloat32()
	r.keep(err)
	return v
}

// Float64 reads a float64.
func (r *ArgReader) Float64() float64 {
	if !r.next() {
		return 0
	}
	v, err := r.dec.DecodeFloat64()
	r.keep(err)
	return v
}

// String reads a string.
func (r *ArgReader) String() string {
	if !r.next() {
		return ""
	}
	v, err := r.dec.DecodeString()
	r.keep(err)
	return v
}

// Bytes reads a byte slice.
func (r *ArgReader) Bytes() []byte {
	if !r.next() {
		return nil
	}
	v, err := r.dec.DecodeBytes()
	r.keep(err)
	return v
}

// Time reads a time.Time.
func (r *ArgReader) Time() time.Time {
	if !r.next() {
		return time.Time{}
	}
	v, err := r.dec.DecodeTime()
	r.keep(err)
	return v
}

// Duration reads a time.Duration.
func (r *ArgReader) Duration() time.Duration {
	if !r.next() {
		return 0
	}
	v, err := r.dec.DecodeInt64()
	r.keep(err)
	return time.Duration(v)
}

// Value reads any other value into ptr.
func (r *ArgReader) Value(ptr any) {
	if !r.next() {
		return
	}
	r.keep(decodeSafely(r.dec, ptr))
}

// decodeSafely decodes into ptr, turning a panic of the msgpack decoder (it
// panics on some malformed input, such as nil where a time.Time is expected)
// into an error, so a bad payload is quarantined instead of crashing attempts.
func decodeSafely(dec *msgpack.Decoder, ptr any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("malformed payload: %v", v)
		}
	}()
	return dec.Decode(ptr)
}

// Err returns the first decoding error, a *DecodeError, or nil.
func (r *ArgReader) Err() error { return r.err }

// DecodeError is returned when a job's payload cannot be decoded into the task's
// parameters. The worker quarantines such jobs instead of retrying them.
type DecodeError struct {
	Task string
	// Arg is the zero-based index of the argument, or -1 for the payload as a whole.
	Arg int
	Err error
}

func (e *DecodeError) Error() string {
	if e.Arg < 0 {
		return fmt.Sprintf("decode args of task %s: %v", e.Task, e.Err)
	}
	return fmt.Sprintf("decode arg %d of task %s: %v", e.Arg, e.Task, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeResult encodes a task's result value.
func EncodeResult(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return b, nil
}

// DecodeResult decodes a stored result into ptr.
func DecodeResult(data []byte, ptr any) error {
	if err := decodeSafely(msgpack.NewDecoder(bytes.NewReader(data)), ptr); err != nil {
		return fmt.Errorf("decode result: %w", err)
	}
	return nil
}
