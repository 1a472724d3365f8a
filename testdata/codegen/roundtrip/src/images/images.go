// Package images is a realistic task package for codegen's compile and round-trip tests.
package images

import (
	"context"
	"fmt"
	"time"

	"example.com/shop/levels"
	"github.com/nuvom/nuvom"
)

// Thumb is a thumbnail.
type Thumb struct {
	Path  string `msgpack:"path"`
	Width int    `msgpack:"width"`
}

// Resize makes a thumbnail of the image at src.
//
//nuvom:task retries=3 timeout=30s queue=images before=logStart
func Resize(ctx context.Context, src string, width int) (Thumb, error) {
	return Thumb{Path: src + ".thumb", Width: width}, ctx.Err()
}

func logStart(ctx context.Context, job nuvom.JobInfo) error { return nil }

func logEnd(ctx context.Context, job nuvom.JobInfo, err error) {}

func alert(ctx context.Context, job nuvom.JobInfo, err error) {}

// Basics holds one value of every basic kind.
type Basics struct {
	B     bool
	I     int
	I8    int8
	I16   int16
	I32   int32
	I64   int64
	U     uint
	U8    uint8
	U16   uint16
	U32   uint32
	U64   uint64
	F32   float32
	F64   float64
	S     string
	Data  []byte
	At    time.Time
	Every time.Duration
}

// Echo returns its arguments.
func Echo(ctx context.Context, b bool, i int, i8 int8, i16 int16, i32 int32, i64 int64, u uint, u8 uint8, u16 uint16, u32 uint32, u64 uint64, f32 float32, f64 float64, s string, data []byte, at time.Time, every time.Duration) (Basics, error) {
	return Basics{b, i, i8, i16, i32, i64, u, u8, u16, u32, u64, f32, f64, s, data, at, every}, nil
}

// Color is a named string.
type Color string

// ID is a named unsigned integer.
type ID uint32

// Blob is a named byte slice.
type Blob []byte

// Wait is a named duration.
type Wait time.Duration

// Ratio is a named float.
type Ratio float32

// Flag is a named bool.
type Flag bool

// NamedBack holds named basic types.
type NamedBack struct {
	Color Color
	Level levels.Level
	ID    ID
	Blob  Blob
	Month time.Month
	Wait  Wait
	Ratio Ratio
	Flag  Flag
}

// EchoNamed returns its arguments; it takes no context.
func EchoNamed(color Color, level levels.Level, id ID, blob Blob, month time.Month, wait Wait, ratio Ratio, flag Flag) (NamedBack, error) {
	return NamedBack{color, level, id, blob, month, wait, ratio, flag}, nil
}

// Point is a point.
type Point struct{ X, Y int }

// Node is a tree.
type Node struct {
	Value    string
	Children []Node
	Parent   *Node `msgpack:"parent,omitempty"`
}

// Composite holds composite values.
type Composite struct {
	Tags    []string
	Counts  map[string]int
	Origin  *Point
	Hash    [16]byte
	Corners [4]Point
	Min     int
	Max     int
	Tree    Node
	ByColor map[Color][]*Point
	When    map[int]time.Time
	Maybe   *string
	Missing *Point
	Grid    [][]float64
}

// EchoComposite returns its arguments.
func EchoComposite(ctx context.Context, tags []string, counts map[string]int, origin *Point, hash [16]byte, corners [4]Point,
	box struct {
		Min int `msgpack:"min"`
		Max int `msgpack:",omitempty"`
	}, tree Node, byColor map[Color][]*Point, when map[int]time.Time, maybe *string, missing *Point, grid [][]float64) (Composite, error) {
	return Composite{tags, counts, origin, hash, corners, box.Min, box.Max, tree, byColor, when, maybe, missing, grid}, nil
}

// Check fails unless got is want. It returns only an error.
func Check(ctx context.Context, want, got string) error {
	if want != got {
		return fmt.Errorf("want %q, got %q", want, got)
	}
	return nil
}

// Count takes nothing at all.
func Count() (int, error) { return 42, nil }
