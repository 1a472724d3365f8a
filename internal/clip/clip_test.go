package clip

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"wide", `"wide"`},
		{strings.Repeat("a", Max), `"` + strings.Repeat("a", Max) + `"`},
		{strings.Repeat("a", Max+1), `"` + strings.Repeat("a", Max) + `…" (81 bytes)`},
		{strings.Repeat("é", 50*1024*1024), `"` + strings.Repeat("é", Max) + `…" (104857600 bytes)`},
		{"tab\there", `"tab\there"`},
	} {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%.20q...) = %.120s, want %.120s", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	if got := Text("12345"); got != "12345" {
		t.Errorf("short: %s", got)
	}
	big := strings.Repeat("9", 50*1024*1024)
	if got, want := Text(big), strings.Repeat("9", Max)+"… (52428800 bytes)"; got != want {
		t.Errorf("long: %.120s", got)
	}
}
