package goflags

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

func TestNormalize(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Bool("wait", false, "")
	fs.Duration("every", 0, "")
	fs.IntP("limit", "n", 0, "")
	fs.BoolP("verbose", "v", false, "")
	for _, c := range []struct{ in, want []string }{
		{[]string{"-wait", "-limit=5", "x"}, []string{"--wait", "--limit=5", "x"}},
		{[]string{"-wiat"}, []string{"--wiat"}},                                        // misspelt: reported as --wiat
		{[]string{"--every", "-5m"}, []string{"--every", "-5m"}},                       // a flag's value
		{[]string{"-every", "-5m"}, []string{"--every", "-5m"}},                        // a flag's value
		{[]string{"-n5", "-vx"}, []string{"-n5", "-vx"}},                               // shorthands
		{[]string{"-", "-1", "[-1]"}, []string{"-", "-1", "[-1]"}},                     // not flags
		{[]string{"a", "--", "-wait"}, []string{"a", "--", "-wait"}},                   // after --
		{[]string{"-limit", "-wait", "-wait"}, []string{"--limit", "-wait", "--wait"}}, // -limit's value
	} {
		if got := Normalize(c.in, fs); !slices.Equal(got, c.want) {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
