package analyzer_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/manifest"
)

// mapKeys returns the keys of the msgpack map at the start of data, in order.
func mapKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	n, err := dec.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, n)
	for i := range keys {
		if keys[i], err = dec.DecodeString(); err != nil {
			t.Fatal(err)
		}
		if err := dec.Skip(); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func wires(fs []manifest.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Wire
	}
	return out
}

func TestSchemaMatchesMsgpack(t *testing.T) {
	src, err := os.ReadFile("msgpack_shapes_test.go")
	if err != nil {
		t.Fatal(err)
	}
	code := strings.Replace(string(src), "package analyzer_test", "package shapes", 1)
	code += `
// Take takes a Shape.
//
//nuvom:task
func Take(s Shape) (Omit, error) { return Omit{}, nil }
`
	dir := writeModule(t, "", map[string]string{
		"go.mod":           "module example.com/shapes\n\ngo 1.26\n",
		"shapes/shapes.go": code,
	})
	res, err := analyzer.Analyze(context.Background(), analyzer.Config{Dir: dir, Env: goEnv()})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Diagnostics {
		t.Errorf("unexpected diagnostic: %s", d.Format(dir))
	}
	if len(res.Tasks) != 1 {
		t.Fatalf("got %d tasks, want 1", len(res.Tasks))
	}
	task := res.Tasks[0]

	enc, err := msgpack.Marshal(sampleShape())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("msgpack keys of Shape: %v", mapKeys(t, enc))
	if diff := cmp.Diff(mapKeys(t, enc), wires(task.Params[0].Type.Fields)); diff != "" {
		t.Errorf("Shape wire keys (-msgpack +schema):\n%s", diff)
	}
	// omitempty from a _msgpack marker: an empty Omit has no keys, a full one has E.
	empty, _ := msgpack.Marshal(Omit{})
	if keys := mapKeys(t, empty); len(keys) != 0 {
		t.Errorf("empty Omit encodes keys %v, want none", keys)
	}
	if f := task.Result.Fields; len(f) != 1 || f[0].Wire != "E" || !f[0].OmitEmpty {
		t.Errorf("Omit schema fields = %+v, want one omitempty field E", f)
	}
}
