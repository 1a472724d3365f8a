package backend

import "context"

// StepOrigin says which workflow a job is a step of, and its parents.
type StepOrigin struct {
	WorkflowID   string `json:"workflow_id"`
	WorkflowName string `json:"workflow_name,omitempty"`
	Parents      []Edge `json:"parents,omitempty"`
}

// StepOrigins is an optional part of the storage contract: a store that
// implements it tells the workflow a job belongs to (the dashboard's job
// page shows it). Stores without it show no workflow origin.
type StepOrigins interface {
	// StepOrigin returns the workflow of job id and the step's parents, or
	// nil (and no error) when the job is no workflow step.
	StepOrigin(ctx context.Context, id string) (*StepOrigin, error)
}
