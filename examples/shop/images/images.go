// Package images makes thumbnails.
package images

import (
	"context"
	"fmt"
	"strings"
)

// Thumb is a generated thumbnail.
type Thumb struct {
	Path   string `msgpack:"path"`
	Width  int    `msgpack:"width"`
	Height int    `msgpack:"height"`
}

// Resize makes a thumbnail of the image at src, width pixels wide.
//
//nuvom:task retries=3 retry_delay=2s backoff=exponential timeout=30s timeout_policy=retry queue=images tags=media,thumbs
func Resize(ctx context.Context, src string, width int) (Thumb, error) {
	if width <= 0 {
		return Thumb{}, fmt.Errorf("resize %s: width %d must be positive", src, width)
	}
	if err := ctx.Err(); err != nil {
		return Thumb{}, err
	}
	name := strings.TrimSuffix(src, ".png")
	return Thumb{Path: fmt.Sprintf("%s_%d.png", name, width), Width: width, Height: width * 3 / 4}, nil
}
