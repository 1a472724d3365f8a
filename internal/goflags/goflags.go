// Package goflags lets the commands take Go-style single-dash long flags
// (-check, -limit=5) as well as pflag's double-dash form.
package goflags

import (
	"strings"

	"github.com/spf13/pflag"
)

// Normalize returns args with each Go-style single-dash long flag (-wait,
// -in=1h) spelled with two dashes, so that both spellings mean the same; a
// misspelt one (-wiat) is then reported as the unknown flag it is rather
// than as an unknown shorthand 'w'. Combined shorthands (-n5, -vC dir), the
// value of a flag that takes one (--every -5m), arguments not starting
// with a letter after the dash, and everything after "--" are left alone.
func Normalize(args []string, fs *pflag.FlagSet) []string {
	out := make([]string, 0, len(args))
	takesValue := false // the previous arg is a flag whose value is the next one
	for i, arg := range args {
		if arg == "--" {
			return append(out, args[i:]...)
		}
		if takesValue {
			takesValue = false
			out = append(out, arg)
			continue
		}
		if strings.HasPrefix(arg, "-") && !strings.HasPrefix(arg, "--") && len(arg) > 2 && isLetter(arg[1]) {
			name, _, _ := strings.Cut(arg[1:], "=")
			if fs.Lookup(name) != nil || fs.ShorthandLookup(arg[1:2]) == nil {
				arg = "-" + arg
			}
		}
		takesValue = needsValue(fs, arg)
		out = append(out, arg)
	}
	return out
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// needsValue reports whether arg is a flag (--name or -n, without =value)
// whose value is the next argument.
func needsValue(fs *pflag.FlagSet, arg string) bool {
	var f *pflag.Flag
	switch {
	case strings.Contains(arg, "="):
		return false
	case strings.HasPrefix(arg, "--"):
		f = fs.Lookup(arg[2:])
	case len(arg) == 2 && arg[0] == '-':
		f = fs.ShorthandLookup(arg[1:])
	}
	return f != nil && f.NoOptDefVal == ""
}
