package backend

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Job metadata (Job.Meta) is part of the storage contract:
//   - Enqueue stores a job's Meta as given (a copy: the caller's map may
//     change afterwards); Claim, Get and List return it, each time a map the
//     caller may change without changing the stored one.
//   - No other operation changes it: it survives claims, retries, releases,
//     recovery of expired leases, cancellation and Retry.
//   - Nil and empty are the same: a job without metadata may come back with
//     either. A store keeps the empty case cheap (SQLite stores NULL).
//
// Keys are non-empty; the client (nuvom.Client) checks them with CheckMeta
// before enqueueing. Backends store any string, byte for byte.

// MaxMetaBytes bounds the total size of a job's metadata (keys and values):
// it travels with the job on every claim, so it is meant for small things
// like a trace context, not for payloads.
const MaxMetaBytes = 16 << 10

// CheckMeta reports what makes meta unfit to store: an empty key, or more
// than MaxMetaBytes of keys and values.
func CheckMeta(meta map[string]string) error {
	n := 0
	for k, v := range meta {
		if k == "" {
			return fmt.Errorf("metadata key is empty (value %q)", v)
		}
		n += len(k) + len(v)
	}
	if n > MaxMetaBytes {
		return fmt.Errorf("metadata is %d bytes, more than the %d allowed (keys: %s)", n, MaxMetaBytes, strings.Join(slices.Sorted(maps.Keys(meta)), ", "))
	}
	return nil
}

// CloneMeta returns a copy of meta, nil when it is empty.
func CloneMeta(meta map[string]string) map[string]string {
	if len(meta) == 0 {
		return nil
	}
	return maps.Clone(meta)
}
