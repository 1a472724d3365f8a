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

// Publish uploads a thumbnail to bucket and returns its URL. In a workflow it
// follows Resize: images.PublishTask.From(resize, "bucket") takes Resize's
// Thumb as its first argument.
//
//nuvom:task retries=3 queue=images
func Publish(ctx context.Context, t Thumb, bucket string) (string, error) {
	if t.Path == "" {
		return "", fmt.Errorf("publish to %s: the thumbnail has no path", bucket)
	}
	return "https://" + bucket + ".example.com/" + t.Path, nil
}
