package analyzer_test

// The types of this file are analyzed from source (copied into a temp
// module) and encoded with msgpack in TestSchemaMatchesMsgpack: the schema's
// wire keys must be the keys msgpack actually writes.

import "time"

// Base is embedded and inlined.
type Base struct {
	ID   int    `msgpack:"id"`
	Kind string `msgpack:"kind"`
}

// Extra is embedded through a pointer and inlined.
type Extra struct {
	Note string
}

// Clash is embedded after a field with the same key: msgpack does not inline it.
type Clash struct {
	Title string
}

// Kept is embedded with noinline.
type Kept struct {
	A int
}

// Named is embedded under a tag name; msgpack still inlines it.
type Named struct {
	B int
}

// Forced is inlined explicitly, its shadowed field dropped.
type Forced struct {
	Title string
	C     int
}

type inner struct {
	D int
}

// Omit marks every field omitempty.
type Omit struct {
	_msgpack struct{} `msgpack:",omitempty"`
	E        int
}

// Shape mixes every embedding rule.
type Shape struct {
	Title string
	Base
	*Extra
	Clash
	Kept   `msgpack:",noinline"`
	Named  `msgpack:"named"`
	Forced `msgpack:",inline"`
	inner
	At   time.Time `msgpack:"at"`
	Skip string    `msgpack:"-"`
	Last string    `msgpack:"last,omitempty"`
	Omit Omit
}

func sampleShape() Shape {
	return Shape{
		Title: "t", Base: Base{ID: 1, Kind: "k"}, Extra: &Extra{Note: "n"}, Clash: Clash{Title: "c"},
		Kept: Kept{A: 1}, Named: Named{B: 2}, Forced: Forced{Title: "f", C: 3}, inner: inner{D: 4},
		At: time.Unix(1, 0).UTC(), Skip: "s", Last: "l", Omit: Omit{E: 5},
	}
}
