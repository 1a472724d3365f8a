package dashboard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuvom/nuvom/manifest/jsonargs"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// BenchmarkWorkflowPage serves the page of a 1,000-wide fan-out and fan-in
// workflow (1,002 steps, 2,000 edges) from a SQLite store: the store read,
// the layout and the SVG, per view; then its widest layer's table.
func BenchmarkWorkflowPage(b *testing.B) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "nuvom.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m := testManifest()
	args, err := jsonargs.Encode(&m.Tasks[0], []byte(`["hello", 3]`))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	fo := &flow{t: b, b: st, wf: &backend.Workflow{ID: "01WFBENCH0000000000000000A", Name: "fan", CreatedAt: now}, now: now, args: args}
	root := fo.step("01WBR000000000000000000000", "shop.Echo", "fan")
	var kids []string
	for i := range 1000 {
		kids = append(kids, fo.step(fmt.Sprintf("01WBK%021d", i), "shop.Echo", "fan", after(root)...))
	}
	fo.step("01WBM000000000000000000000", "shop.Echo", "fan", after(kids...)...)
	fo.enqueue()
	h, err := dashboard.New(dashboard.Options{Backend: st, Manifest: m})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	for _, p := range []struct{ name, path string }{
		{"graph", "/workflows/" + fo.wf.ID},
		{"layer-table", "/workflows/" + fo.wf.ID + "?layer=1&page=5"},
		{"list", "/workflows"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d", p.path, rec.Code)
				}
			}
		})
	}
}
