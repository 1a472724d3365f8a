package main

import (
	"testing"

	"github.com/nuvom/nuvom/manifest"
)

func TestDeclHash(t *testing.T) {
	const base = "package p\n\n// F does f.\n//\n//nuvom:task\nfunc F(n int) error {\n\treturn nil\n}\n\ntype T struct{ A int }\n"
	tests := []struct {
		name, src string
		same      bool
	}{
		{"identical", base, true},
		{"body edit", "package p\n\n// F does f.\n//\n//nuvom:task\nfunc F(n int) error {\n\tprintln(n)\n\n\treturn nil\n}\n\ntype T struct{ A int }\n", true},
		{"directive edit", "package p\n\n// F does f.\n//\n//nuvom:task retries=3\nfunc F(n int) error {\n\treturn nil\n}\n\ntype T struct{ A int }\n", false},
		{"signature edit", "package p\n\n// F does f.\n//\n//nuvom:task\nfunc F(n int64) error {\n\treturn nil\n}\n\ntype T struct{ A int }\n", false},
		{"type edit", "package p\n\n// F does f.\n//\n//nuvom:task\nfunc F(n int) error {\n\treturn nil\n}\n\ntype T struct{ A string }\n", false},
		{"doc edit", "package p\n\n// F does g.\n//\n//nuvom:task\nfunc F(n int) error {\n\treturn nil\n}\n\ntype T struct{ A int }\n", false},
		{"syntax error", "package p\n\nfunc F(n int) error {\n", false},
	}
	want := declHash([]byte(base))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := declHash([]byte(tt.src)) == want; got != tt.same {
				t.Errorf("same hash = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestDependents(t *testing.T) {
	named := func(n string) manifest.Type { return manifest.Type{Kind: manifest.KindStruct, Name: n} }
	m := &manifest.Manifest{Module: "example.com/app", Tasks: []manifest.Task{
		{Name: "a.F", Dir: "a", Params: []manifest.Param{{Name: "x", Type: manifest.Type{Kind: manifest.KindSlice, Elem: &manifest.Type{Kind: manifest.KindStruct, Name: "example.com/app/types.Item"}}}}},
		{Name: "b.G", Dir: "b", Result: &manifest.Type{Kind: manifest.KindStruct, Name: "example.com/app/b.R",
			Fields: []manifest.Field{{Name: "T", Type: named("example.com/app/types/deep.T")}}}},
		{Name: "c.H", Dir: "c", Params: []manifest.Param{{Name: "n", Type: manifest.Type{Kind: manifest.KindInt}}}},
	}}
	tests := []struct {
		pkg  string
		want []string
	}{
		{"example.com/app/types", []string{"a"}},
		{"example.com/app/types/deep", []string{"b"}},
		{"example.com/app/c", nil},
	}
	for _, tt := range tests {
		got := dependents(m, map[string]bool{tt.pkg: true})
		if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
			t.Errorf("dependents(%s) = %q, want %q", tt.pkg, got, tt.want)
		}
	}
}
