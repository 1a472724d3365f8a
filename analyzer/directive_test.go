package analyzer_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nuvom/nuvom/analyzer"
)

func TestParseDirective(t *testing.T) {
	type kv = analyzer.KV
	tests := []struct {
		name    string
		text    string
		want    []kv
		errCols []int // columns of the expected errors, in order
	}{
		{"empty", "", nil, nil},
		{"spaces only", "  \t ", nil, nil},
		{"one pair", " retries=3", []kv{{"retries", "3", 2}}, nil},
		{"several", " retries=3 queue=images\ttimeout=30s", []kv{{"retries", "3", 2}, {"queue", "images", 12}, {"timeout", "30s", 25}}, nil},
		{"quoted with space", ` name="send email"`, []kv{{"name", "send email", 2}}, nil},
		{"quoted list", ` tags="a, b"`, []kv{{"tags", "a, b", 2}}, nil},
		{"quoted escapes", ` name="a\"b\\c\x41\u00e9"`, []kv{{"name", "a\"b\\cAé", 2}}, nil},
		{"explicit empty", ` tags=""`, []kv{{"tags", "", 2}}, nil},
		{"equals in value", ` name=a=b`, []kv{{"name", "a=b", 2}}, nil},
		{"negative number", ` priority=-5`, []kv{{"priority", "-5", 2}}, nil},
		{"bare word", ` retries`, nil, []int{2}},
		{"bare word then pair", ` oops retries=1`, []kv{{"retries", "1", 7}}, []int{2}},
		{"empty value", ` queue= retries=1`, []kv{{"retries", "1", 9}}, []int{2}},
		{"empty value at end", ` queue=`, nil, []int{2}},
		{"missing key", ` =x`, nil, []int{2}},
		{"bad key", ` 9x=1 a-b=2`, nil, []int{2, 7}},
		{"duplicate", ` retries=1 retries=2`, []kv{{"retries", "1", 2}}, []int{12}},
		{"unterminated", ` queue=a name="send email`, []kv{{"queue", "a", 2}}, []int{15}},
		{"unterminated escape", ` name="abc\"`, nil, []int{7}},
		{"text after quote", ` name="a"b queue=x`, []kv{{"queue", "x", 12}}, []int{10}},
		{"quote inside value", ` name=a"b" queue=x`, []kv{{"queue", "x", 12}}, []int{8}},
		{"quote in key", ` a"b"=1 queue=x`, []kv{{"queue", "x", 9}}, []int{3}},
		{"malformed quote", ` name="\q"`, nil, []int{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := analyzer.ParseDirective(tt.text)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pairs (-want +got):\n%s", diff)
			}
			var cols []int
			if err != nil {
				var des analyzer.DirectiveErrors
				if !errors.As(err, &des) {
					t.Fatalf("error %T is not DirectiveErrors: %v", err, err)
				}
				for _, e := range des {
					cols = append(cols, e.Col)
				}
			}
			if diff := cmp.Diff(tt.errCols, cols); diff != "" {
				t.Errorf("error columns (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestRenderDirectiveRoundTrip(t *testing.T) {
	in := []analyzer.KV{{Key: "name", Value: "send email"}, {Key: "tags", Value: ""}, {Key: "queue", Value: "q"}, {Key: "x", Value: "tab\there\"quote\\"}}
	text := analyzer.RenderDirective(in)
	if want := `name="send email" tags="" queue=q x="tab\there\"quote\\"`; text != want {
		t.Errorf("RenderDirective = %s, want %s", text, want)
	}
	out, err := analyzer.ParseDirective(text)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		out[i].Col = 0
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func FuzzParseDirective(f *testing.F) {
	for _, s := range []string{
		"", " retries=3 retry_delay=2s backoff=exponential timeout=30s queue=images tags=media,thumbs",
		` name="send email" tags="a, b"`, ` name="unterminated`, ` a"b=1`, ` =x`, ` k=`, ` k="\x41\u00e9"`,
		` k="a"b`, " k=\x00\xff", ` retries=1 retries=2`, "\tk=v\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		kvs, err := analyzer.ParseDirective(text)
		for _, kv := range kvs {
			if kv.Col < 1 || kv.Col > len(text) {
				t.Fatalf("pair %+v has a column outside the text %q", kv, text)
			}
		}
		if err != nil {
			return
		}
		again, err := analyzer.ParseDirective(" " + analyzer.RenderDirective(kvs))
		if err != nil {
			t.Fatalf("re-parsing the rendering of %q: %v", text, err)
		}
		if len(again) != len(kvs) {
			t.Fatalf("round trip of %q: %d pairs, then %d", text, len(kvs), len(again))
		}
		for i := range kvs {
			if kvs[i].Key != again[i].Key || kvs[i].Value != again[i].Value {
				t.Fatalf("round trip of %q: pair %d %+v became %+v", text, i, kvs[i], again[i])
			}
		}
	})
}
