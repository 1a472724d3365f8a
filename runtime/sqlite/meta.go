package sqlite

import (
	"fmt"
	"maps"
	"slices"
)

// The meta column holds a job's metadata (backend.Job.Meta): NULL when it has
// none, otherwise its pairs sorted by key, each key and value a
// uvarint-length-prefixed string (the encoding of error_chain, two strings a
// pair). Only Enqueue writes it; every read of a full job returns it.

// encodeMeta returns the stored form of meta: nil (NULL) when it is empty.
func encodeMeta(meta map[string]string) any {
	if len(meta) == 0 {
		return nil
	}
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		b = appendString(b, k)
		b = appendString(b, meta[k])
	}
	return b
}

// decodeMeta reverses encodeMeta; NULL or an empty blob is nil.
func decodeMeta(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	r := reader{b: b}
	for len(r.b) > 0 {
		k := r.bytes()
		v := r.bytes()
		if r.err != nil {
			return nil, fmt.Errorf("pair %d: %w", len(out)+1, r.err)
		}
		out[string(k)] = string(v)
	}
	return out, nil
}
