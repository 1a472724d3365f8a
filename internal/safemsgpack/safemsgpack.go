// Package safemsgpack decodes msgpack from storage that may be damaged (a job
// file, a Redis record) without letting the damage take the process down.
package safemsgpack

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Unmarshal is msgpack.Unmarshal for data that may be damaged. It first
// skips over the whole value: msgpack v5.4.1 allocates a slice of the length
// an array header declares before it reads the elements (its allocation
// limit is never applied: the flag test in decodeSliceValue reads "!= 1"),
// so a few damaged bytes could ask for gigabytes; skipping proves that every
// declared length is backed by data (each element takes a byte at least)
// without allocating. A panic of the decoder (v5.4.1 panics on a nil where a
// time.Time is expected) is an error too.
func Unmarshal(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("msgpack decoder panicked: %v", r)
		}
	}()
	if err := msgpack.NewDecoder(bytes.NewReader(data)).Skip(); err != nil {
		return fmt.Errorf("msgpack: damaged value: %w", err)
	}
	return msgpack.Unmarshal(data, v)
}
