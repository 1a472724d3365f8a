// Package images is a second package named images, for the registry's import aliases.
package images

import (
	"context"

	newimages "example.com/shop/images"
)

// Image is an image of the legacy pipeline.
type Image struct{ Path string }

// Crop converts a thumbnail of the new pipeline.
func Crop(ctx context.Context, img newimages.Thumb) (Image, error) {
	return Image{Path: img.Path + ".crop"}, nil
}

// Resize is named like a task of the other images package.
func Resize(ctx context.Context, src string) error { return nil }
