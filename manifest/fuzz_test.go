package manifest

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the manifest reader: it must never panic,
// and whatever it accepts must encode and decode back to the same bytes.
func FuzzDecode(f *testing.F) {
	m := New("example.com/shop")
	m.Tasks = []Task{sampleTask()}
	valid, err := m.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"version":"1.0","module":"m","registry":"r","tasks":[]}`))
	f.Add([]byte(`{"version":"9.0"}`))
	f.Add([]byte(`{"version":"1.0","module":"m","registry":"r","tasks":[{"name":"a","func":"A","package":"p","params":[{"name":"x","type":{"kind":"slice","elem":{"kind":"ref","name":"p.T"}}}],"options":{"backoff":"fixed","timeout_policy":"fail","queue":"q"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		m2, err := Decode(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decoding encoded manifest: %v\n%s", err, enc)
		}
		enc2, err := m2.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n---\n%s", enc, enc2)
		}
	})
}
