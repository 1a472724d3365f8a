package backend

import (
	"slices"
	"time"
)

// Graph is a workflow's shape as a store without relations keeps it (the
// file and Redis backends store it msgpack-encoded, once, at enqueue): its
// steps and each step's parents and input. It never changes.
type Graph struct {
	ID        string      `msgpack:"id"`
	Name      string      `msgpack:"name"`
	CreatedAt time.Time   `msgpack:"created_at"`
	Steps     []GraphStep `msgpack:"steps"`
}

// GraphStep is one step of a Graph.
type GraphStep struct {
	ID      string `msgpack:"id"`
	Parents []Edge `msgpack:"parents"`
	Input   Input  `msgpack:"input"`
}

// GraphOf returns the Graph of wf (its time clamped as stored).
func GraphOf(wf *Workflow) Graph {
	g := Graph{ID: wf.ID, Name: wf.Name, CreatedAt: ClampTime(wf.CreatedAt)}
	for _, s := range wf.Steps {
		g.Steps = append(g.Steps, GraphStep{ID: s.Job.ID, Parents: slices.Clone(s.Parents), Input: s.Input})
	}
	return g
}

// Step returns the step id, or nil.
func (g *Graph) Step(id string) *GraphStep {
	for i := range g.Steps {
		if g.Steps[i].ID == id {
			return &g.Steps[i]
		}
	}
	return nil
}

// Children returns the steps that wait for id.
func (g *Graph) Children(id string) []string {
	var out []string
	for _, s := range g.Steps {
		for _, e := range s.Parents {
			if e.Parent == id {
				out = append(out, s.ID)
				break
			}
		}
	}
	return out
}
