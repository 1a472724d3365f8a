package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.StepOrigins = (*Client)(nil)

const capStepOrigins = "step origins (backend.StepOrigins)"

// stepOrigin answers a StepOrigin call.
func (s *server) stepOrigin(ctx context.Context, params func(any) error) (any, error) {
	so, ok := unwrapTo[backend.StepOrigins](s.b)
	if !ok {
		return nil, fmt.Errorf("remote: StepOrigin: the backend %q lacks %s: %w", s.name, capStepOrigins, errors.ErrUnsupported)
	}
	var id string
	if err := params(&id); err != nil {
		return nil, err
	}
	return so.StepOrigin(ctx, id)
}

// StepOrigin implements backend.StepOrigins. A server built with an older
// nuvom answers it with an unknown-method error.
func (c *Client) StepOrigin(ctx context.Context, id string) (*backend.StepOrigin, error) {
	var out *backend.StepOrigin
	if _, err := c.doExt(ctx, "StepOrigin", id, &out); err != nil {
		return nil, err
	}
	return out, nil
}
