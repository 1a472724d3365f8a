// Package clip shortens the values that error messages echo back, so a 50 MB
// argument gives a one-line error, not a 50 MB one.
package clip

import (
	"fmt"
	"strconv"
)

// Max is how many characters of a value an error message echoes.
const Max = 80

// Quote quotes s as strconv.Quote does. A value longer than Max characters is
// cut to its first Max, followed by an ellipsis and its whole size:
// "aaaa…" (52428800 bytes).
func Quote(s string) string {
	head, cut := prefix(s)
	if !cut {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s (%d bytes)", strconv.Quote(head+"…"), len(s))
}

// Text is Quote without the quotes, for values such as numbers.
func Text(s string) string {
	head, cut := prefix(s)
	if !cut {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", head, len(s))
}

// prefix returns the first Max characters of s and whether s is longer.
func prefix(s string) (string, bool) {
	if len(s) <= Max {
		return s, false
	}
	n := 0
	for i := range s {
		if n == Max {
			return s[:i], true
		}
		n++
	}
	return s, false
}
