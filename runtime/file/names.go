package file

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Ready files are named <prio>-<runat>-<id>: the priority inverted and the
// run-at time, each as 16 hex digits of an order-preserving unsigned mapping,
// so that sorting names gives the claim order (highest priority, then
// earliest run-at, then lowest id). Scheduled files swap the first two fields
// (<runat>-<prio>-<id>) so that sorting gives the order in which they fall due.
const (
	fieldLen  = 16
	prefixLen = 2*fieldLen + 2 // two fields and two dashes before the id
)

const signBit = uint64(1) << 63

// prioKey maps a priority to a key where higher priorities sort first.
func prioKey(p int) uint64 { return ^(uint64(int64(p)) ^ signBit) }

// timeKey maps a time to a key that sorts chronologically. Times outside the
// range of UnixNano (including the zero time) clamp to the ends.
func timeKey(t time.Time) uint64 {
	switch {
	case t.Before(minNanoTime):
		return 0
	case t.After(maxNanoTime):
		return math.MaxUint64
	}
	return uint64(t.UnixNano()) ^ signBit
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// readyName is the file name of a ready job.
func readyName(prio int, runAt time.Time, id string) string {
	return fmt.Sprintf("%016x-%016x-%s", prioKey(prio), timeKey(runAt), id)
}

// scheduledName is the file name of a scheduled job.
func scheduledName(prio int, runAt time.Time, id string) string {
	return fmt.Sprintf("%016x-%016x-%s", timeKey(runAt), prioKey(prio), id)
}

// entry is a parsed ready or scheduled file name.
type entry struct {
	name  string
	first uint64 // prio key for ready, time key for scheduled
	next  uint64
	id    string
	dir   string // the queue folder holding it
}

// parseName splits a ready or scheduled file name; ok is false for names
// this package did not write.
func parseName(name string) (e entry, ok bool) {
	if len(name) <= prefixLen || name[fieldLen] != '-' || name[2*fieldLen+1] != '-' {
		return entry{}, false
	}
	a, err1 := strconv.ParseUint(name[:fieldLen], 16, 64)
	b, err2 := strconv.ParseUint(name[fieldLen+1:2*fieldLen+1], 16, 64)
	if err1 != nil || err2 != nil {
		return entry{}, false
	}
	return entry{name: name, first: a, next: b, id: name[prefixLen:]}, true
}

// less orders entries by their fields, then id.
func (e entry) less(o entry) bool {
	if e.first != o.first {
		return e.first < o.first
	}
	if e.next != o.next {
		return e.next < o.next
	}
	return e.id < o.id
}

// queueDir is the folder name of a queue. Names made of lower-case letters,
// digits, '_' and '-' are used as they are; any other name (upper case
// included, because Windows folders are case-insensitive) becomes "~" and a
// hash, so that every queue name is a safe and distinct folder name.
func queueDir(q string) string {
	if q != "" && len(q) <= 64 && safeLower(q) {
		return q
	}
	sum := sha256.Sum256([]byte(q))
	return "~" + hex.EncodeToString(sum[:16])
}

func safeLower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keyFile is the index file name of a task's unique key (keys of different
// tasks are independent).
func keyFile(task, key string) string {
	sum := sha256.Sum256([]byte(task + "\x00" + key))
	return hex.EncodeToString(sum[:20])
}

// checkID refuses ids that are not safe file names on every platform.
func checkID(id string) error {
	if id == "" || len(id) > 128 || id[0] == '.' || id[0] == '-' {
		return fmt.Errorf("job id %q is not usable as a file name", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("job id %q has character %q; only letters, digits, '.', '_' and '-' are allowed", id, c)
		}
	}
	return nil
}
