package safemsgpack

import (
	"testing"
	"time"
)

type record struct {
	Attempts []struct {
		N  int
		At time.Time
	} `msgpack:"attempts"`
	ID string `msgpack:"id"`
}

// TestDeclaredLengthBeyondTheData decodes a map whose array header declares
// about two billion elements in a few bytes (found by the file backend's
// FuzzDecodeJob, which ran out of memory on it): an error, not a crash.
func TestDeclaredLengthBeyondTheData(t *testing.T) {
	data := []byte("\x84\xa8attempts\xddt\xc0\xa2id@j2\xa5\x80\xff\xff\xff\xff\xa6queued")
	var r record
	if err := Unmarshal(data, &r); err == nil {
		t.Fatal("a damaged array length decoded without error")
	}
}

// TestPanicIsAnError decodes a nil where a time.Time is expected, on which
// msgpack v5.4.1 panics: an error, not a crash.
func TestPanicIsAnError(t *testing.T) {
	var r record
	err := Unmarshal([]byte("\x81\xa8attempts\x91\x82\xa1N\x01\xa2At\xc0"), &r)
	if err == nil {
		t.Fatal("a nil time decoded without error")
	}
}

// TestRoundTrip checks that intact data decodes as before.
func TestRoundTrip(t *testing.T) {
	var r record
	if err := Unmarshal([]byte("\x82\xa8attempts\x90\xa2id\xa2j1"), &r); err != nil || r.ID != "j1" {
		t.Fatalf("Unmarshal = %+v, %v; want id j1", r, err)
	}
}
