package dashboard

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/nuvom/nuvom/runtime/backend"
)

// The graph's geometry, in SVG user units.
const (
	boxW       = 180 // a step's box
	boxH       = 44
	gapX       = 16 // between boxes of a layer
	gapY       = 56 // between layers
	margin     = 12
	collapseAt = 20 // a layer with more steps is drawn as one summary box
	summaryW   = 420
	layerPage  = 100 // rows of a layer's table
	maxParents = 20  // parents named in a job's origin
)

// workflowsData is the Workflows page.
type workflowsData struct {
	Supported bool
	List      []backend.WorkflowSummary
	Limit     int
	More      bool // the list was cut at Limit
}

func (h *Handler) flows() (backend.Workflows, bool) {
	f, ok := h.o.Backend.(backend.Workflows)
	return f, ok
}

func (h *Handler) workflowsPage(r *http.Request) (string, any, error) {
	d := workflowsData{Limit: 100}
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
		d.Limit = min(n, 1000)
	}
	f, ok := h.flows()
	if !ok {
		return "Workflows", d, nil
	}
	d.Supported = true
	ctx, cancel := reqCtx(r)
	defer cancel()
	list, err := f.ListWorkflows(ctx, d.Limit+1)
	if err != nil {
		return "", nil, fmt.Errorf("list workflows: %w", err)
	}
	if len(list) > d.Limit {
		list, d.More = list[:d.Limit], true
	}
	d.List = list
	return "Workflows", d, nil
}

// box is one drawn box: a step, or the summary of a collapsed layer.
type box struct {
	X, Y, W, H int
	Step       *backend.StepInfo // nil for a summary
	Layer      int
	Total      int          // steps in a summary
	Counts     []stateCount // a summary's steps by state
	Error      string       // a step's error when it did not succeed
}

// stateCount is one state's count, in life order.
type stateCount struct {
	State backend.State
	N     int
}

// edge is one drawn line from a parent box to a child box.
type edge struct {
	X1, Y1, X2, Y2 int
	OrderOnly      bool
	IgnoreFailure  bool
	N              int // edges merged into this line (collapsed layers)
}

// graph is a workflow laid out in layers of topological depth.
type graph struct {
	W, H   int
	Boxes  []box
	Edges  []edge
	Layers []int // steps per layer
}

// workflowData is the Workflow page.
type workflowData struct {
	Info      *backend.WorkflowInfo
	Counts    []stateCount
	Graph     graph
	Layer     int // the layer listed in a table, -1 for none
	LayerRows []*backend.StepInfo
	Page      int
	Pages     int
	Index     map[string]string // "#N", each step's number as enqueued, by job id
}

// countsOf orders counts by the states' life order.
func countsOf(m map[backend.State]int) []stateCount {
	var out []stateCount
	seen := map[backend.State]bool{}
	for _, st := range backend.AllStates() {
		if n := m[st]; n > 0 {
			out = append(out, stateCount{st, n})
		}
		seen[st] = true
	}
	for st, n := range m { // a state this list does not know
		if !seen[st] && n > 0 {
			out = append(out, stateCount{st, n})
		}
	}
	return out
}

// layout places the steps in layers by depth (a root is at depth 0, a
// child one below its deepest parent) and computes every box's and edge's
// position. A layer of more than collapseAt steps becomes one summary box.
func layout(info *backend.WorkflowInfo) (graph, []int) {
	index := make(map[string]int, len(info.Steps))
	depth := make([]int, len(info.Steps))
	for i, s := range info.Steps {
		index[s.Job.ID] = i
	}
	// Steps are stored parents first (CheckWorkflow): one pass gives every
	// depth. A parent that is not an earlier step (purged) is left out.
	for i, s := range info.Steps {
		for _, e := range s.Parents {
			if p, ok := index[e.Parent]; ok && p < i {
				depth[i] = max(depth[i], depth[p]+1)
			}
		}
	}
	var layers [][]int
	for i := range info.Steps {
		for len(layers) <= depth[i] {
			layers = append(layers, nil)
		}
		layers[depth[i]] = append(layers[depth[i]], i)
	}
	var g graph
	boxOf := make([]int, len(info.Steps)) // the box each step is drawn in
	for l, members := range layers {
		g.Layers = append(g.Layers, len(members))
		y := margin + l*(boxH+gapY)
		if len(members) > collapseAt {
			counts := map[backend.State]int{}
			for _, i := range members {
				counts[info.Steps[i].Job.State]++
				boxOf[i] = len(g.Boxes)
			}
			g.Boxes = append(g.Boxes, box{Y: y, W: summaryW, H: boxH, Layer: l, Total: len(members), Counts: countsOf(counts)})
			continue
		}
		for _, i := range members {
			boxOf[i] = len(g.Boxes)
			s := &info.Steps[i]
			b := box{Y: y, W: boxW, H: boxH, Step: s, Layer: l}
			if s.Job.State.Final() && s.Job.State != backend.StateSucceeded {
				b.Error = s.Job.Error
			}
			g.Boxes = append(g.Boxes, b)
		}
	}
	// Centre each layer in the widest.
	widths := make([]int, len(layers))
	for _, b := range g.Boxes {
		if widths[b.Layer] > 0 {
			widths[b.Layer] += gapX
		}
		widths[b.Layer] += b.W
	}
	g.W = 2 * margin
	for _, w := range widths {
		g.W = max(g.W, w+2*margin)
	}
	g.H = 2*margin + len(layers)*boxH + max(len(layers)-1, 0)*gapY
	next := make([]int, len(layers))
	for l := range layers {
		next[l] = (g.W - widths[l]) / 2
	}
	for k := range g.Boxes {
		b := &g.Boxes[k]
		b.X = next[b.Layer]
		next[b.Layer] += b.W + gapX
	}
	// Edges, one line per (parent box, child box, kind).
	type key struct {
		from, to        int
		order, ignoring bool
	}
	merged := map[key]int{}
	for i, s := range info.Steps {
		for _, e := range s.Parents {
			p, ok := index[e.Parent]
			if !ok {
				continue
			}
			k := key{boxOf[p], boxOf[i], e.OrderOnly, e.IgnoreFailure}
			if at, ok := merged[k]; ok {
				g.Edges[at].N++
				continue
			}
			from, to := g.Boxes[k.from], g.Boxes[k.to]
			merged[k] = len(g.Edges)
			g.Edges = append(g.Edges, edge{X1: from.X + from.W/2, Y1: from.Y + from.H, X2: to.X + to.W/2, Y2: to.Y,
				OrderOnly: e.OrderOnly, IgnoreFailure: e.IgnoreFailure, N: 1})
		}
	}
	return g, depth
}

func (h *Handler) workflowPage(r *http.Request) (string, any, error) {
	f, ok := h.flows()
	if !ok {
		return "", nil, statusError{http.StatusNotFound, "this store does not keep workflows"}
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	id := r.PathValue("id")
	info, err := f.GetWorkflow(ctx, id)
	if errors.Is(err, backend.ErrWorkflowNotFound) {
		return "", nil, statusError{http.StatusNotFound, "no workflow " + id}
	}
	if err != nil {
		return "", nil, fmt.Errorf("get workflow %s: %w", id, err)
	}
	d := workflowData{Info: info, Counts: countsOf(info.Counts), Layer: -1, Index: map[string]string{}}
	var depth []int
	d.Graph, depth = layout(info)
	for _, s := range info.Steps {
		d.Index[s.Job.ID] = "#" + strconv.Itoa(s.Seq)
	}
	q := r.URL.Query()
	if l, err := strconv.Atoi(q.Get("layer")); err == nil && l >= 0 && l < len(d.Graph.Layers) {
		d.Layer = l
		var rows []*backend.StepInfo
		for i := range info.Steps {
			if depth[i] == l {
				rows = append(rows, &info.Steps[i])
			}
		}
		d.Pages = (len(rows) + layerPage - 1) / layerPage
		d.Page, _ = strconv.Atoi(q.Get("page"))
		d.Page = max(0, min(d.Page, d.Pages-1))
		d.LayerRows = rows[d.Page*layerPage : min(len(rows), (d.Page+1)*layerPage)]
	}
	title := "Workflow " + info.ID
	if info.Name != "" {
		title = "Workflow " + info.Name
	}
	return title, d, nil
}

// workflowAction cancels a workflow.
func (h *Handler) workflowAction(r *http.Request) (string, error) {
	f, ok := h.flows()
	if !ok {
		return "", errors.New("this store does not keep workflows")
	}
	id := r.PathValue("id")
	if r.PathValue("action") != "cancel" {
		return "", fmt.Errorf("unknown workflow action %q", r.PathValue("action"))
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := f.CancelWorkflow(ctx, id, h.o.Now())
	if err != nil {
		return "", fmt.Errorf("cancel workflow %s: %w", id, err)
	}
	return fmt.Sprintf("Workflow %s: cancelled %d steps.", id, n), nil
}

// stepOrigin is the job page's workflow origin.
type stepOrigin struct {
	Workflow    *backend.StepOrigin // the workflow the job is a step of
	MoreParents int                 // parents of the step left out of Workflow.Parents
}

// capParents keeps the first maxParents parents of o and returns how many
// it left out: a fan-in of 1,000 links to its workflow, not to each parent.
func capParents(o *backend.StepOrigin) int {
	if o == nil || len(o.Parents) <= maxParents {
		return 0
	}
	more := len(o.Parents) - maxParents
	o.Parents = o.Parents[:maxParents]
	return more
}

// short cuts s to n runes with an ellipsis, for text inside a box.
func short(n int, s string) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// countsLine is "3 succeeded · 1 pending".
func countsLine(cs []stateCount) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%d %s", c.N, c.State)
	}
	return strings.Join(parts, " · ")
}

// workflowFuncs are the template helpers of the workflow pages.
var workflowFuncs = template.FuncMap{"short": short, "countsLine": countsLine, "counts": countsOf}
