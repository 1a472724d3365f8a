// Package clash has tasks whose parameter names collide with what generated code uses.
package clash

import (
	"context"
	"fmt"
	"strings"
	"time"

	"example.com/shop/levels"
	"github.com/nuvom/nuvom"
)

// Color is a named string.
type Color string

// Color2 is the result of Shadows.
type Color2 struct{ Text string }

func h(ctx context.Context, job nuvom.JobInfo) error { return nil }

// Everything names its params like the generated code's own identifiers.
func Everything(c context.Context, ctx string, client string, opts []string, err string, r int, w int, res bool, args []byte, h float64, ctx1 int) (string, error) {
	return strings.TrimSpace(fmt.Sprintln(ctx, client, opts, err, r, w, res, string(args), h, ctx1)), nil
}

// Shadows names its params like packages, types and functions the generated code refers to.
func Shadows(nuvom string, time time.Time, string Color, int64 int32, nil int, Shadows int, Color []Color, encodeShadowsArgs int, levels levels.Level, min int, ctx int) (Color2, error) {
	var none error
	return Color2{Text: strings.TrimSpace(fmt.Sprintln(nuvom, time.UTC().Format("2006-01-02"), string, int64, nil, Shadows, Color, encodeShadowsArgs, levels, min, ctx))}, none
}
