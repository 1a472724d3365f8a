package dashboard

import (
	"fmt"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
)

// TestLayoutLayersBoxesWithoutOverlap lays out a diamond whose middle is
// either narrow (boxes) or wider than collapseAt (one summary box): layers go
// down by depth, no two boxes overlap, every edge runs from a box's bottom to
// a lower box's top, and parallel edges into a summary merge.
func TestLayoutLayersBoxesWithoutOverlap(t *testing.T) {
	for _, width := range []int{1, 3, collapseAt, collapseAt + 1, 1000} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			step := func(id string, parents ...string) backend.StepInfo {
				s := backend.StepInfo{Job: &backend.Job{ID: id, Task: "t", State: backend.StateQueued}}
				for _, p := range parents {
					s.Parents = append(s.Parents, backend.Edge{Parent: p})
				}
				return s
			}
			info := &backend.WorkflowInfo{Steps: []backend.StepInfo{step("root")}}
			var mids []string
			for i := range width {
				mids = append(mids, fmt.Sprint("m", i))
				info.Steps = append(info.Steps, step(mids[i], "root"))
			}
			info.Steps = append(info.Steps, step("merge", mids...), step("late", "root", "merge"))
			g, depth := layout(info)
			if got := []int{depth[0], depth[1], depth[width+1], depth[width+2]}; fmt.Sprint(got) != "[0 1 2 3]" {
				t.Fatalf("depths = %v, want [0 1 2 3]", got)
			}
			if fmt.Sprint(g.Layers) != fmt.Sprint([]int{1, width, 1, 1}) {
				t.Fatalf("layers = %v", g.Layers)
			}
			wantBoxes, wantEdges := width+3, 2*width+2
			if width > collapseAt {
				wantBoxes, wantEdges = 4, 4
			}
			if len(g.Boxes) != wantBoxes || len(g.Edges) != wantEdges {
				t.Fatalf("%d boxes and %d edges, want %d and %d", len(g.Boxes), len(g.Edges), wantBoxes, wantEdges)
			}
			for i, a := range g.Boxes {
				if a.X < 0 || a.Y < 0 || a.X+a.W > g.W || a.Y+a.H > g.H {
					t.Fatalf("box %d %+v outside the %dx%d drawing", i, a, g.W, g.H)
				}
				for _, b := range g.Boxes[i+1:] {
					if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
						t.Fatalf("boxes overlap: %+v and %+v", a, b)
					}
				}
			}
			n := 0
			for _, e := range g.Edges {
				if e.Y1 >= e.Y2 {
					t.Fatalf("edge %+v does not go down", e)
				}
				n += e.N
			}
			if n != 2*width+2 {
				t.Fatalf("edges stand for %d parent links, want %d", n, 2*width+2)
			}
		})
	}
}
