package codegen

import (
	"go/token"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dave/jennifer/jen"
)

// freeName returns base, or base followed by the smallest number from 1 on,
// whichever is not taken.
func freeName(base string, taken map[string]bool) string {
	if !taken[base] {
		return base
	}
	for i := 1; ; i++ {
		if n := base + strconv.Itoa(i); !taken[n] {
			return n
		}
	}
}

var (
	versionElem = regexp.MustCompile(`^v[0-9]+$`)
	versionTail = regexp.MustCompile(`\.v[0-9]+$`)
	notAlnum    = regexp.MustCompile(`[^a-z0-9]`)
)

// defaultAlias derives a package's likely name from its import path: the last
// element (the one before a /vN major-version suffix), without a .vN suffix or
// go-/-go affixes, lower-cased and reduced to letters and digits.
func defaultAlias(importPath string) string {
	elems := strings.Split(strings.Trim(importPath, "/"), "/")
	last := elems[len(elems)-1]
	if versionElem.MatchString(last) && len(elems) > 1 {
		last = elems[len(elems)-2]
	}
	last = versionTail.ReplaceAllString(last, "")
	last = strings.ToLower(last)
	last = strings.TrimPrefix(last, "go-")
	last = strings.TrimSuffix(last, "-go")
	last = notAlnum.ReplaceAllString(last, "")
	for last != "" {
		r, size := utf8.DecodeRuneInString(last)
		if !unicode.IsDigit(r) {
			break
		}
		last = last[size:]
	}
	if last == "" {
		return "pkg"
	}
	return last
}

// assignAliases gives each import path a distinct file-level name that is
// neither a Go keyword, a predeclared identifier nor in taken, preferring the
// names in prefer and else defaultAlias. Paths are assigned in the given
// order, so the result is deterministic when paths is.
func assignAliases(paths []string, prefer map[string]string, taken map[string]bool) map[string]string {
	used := make(map[string]bool, len(taken))
	for n := range taken {
		used[n] = true
	}
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		if _, done := out[p]; done {
			continue
		}
		base, ok := prefer[p]
		if !ok {
			base = defaultAlias(p)
		}
		name := base
		for i := 1; used[name] || jen.IsReservedWord(name) || token.IsKeyword(name); i++ {
			name = base + strconv.Itoa(i)
		}
		used[name] = true
		out[p] = name
	}
	return out
}

// registerAliases tells f the name of each path: without an alias in the
// import block when it is the package's own name (known), else as an alias.
func registerAliases(f *jen.File, aliases map[string]string, known map[string]string) {
	paths := make([]string, 0, len(aliases))
	for p := range aliases {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		a := aliases[p]
		if known[p] == a {
			f.ImportName(p, a)
		} else {
			f.ImportAlias(p, a)
		}
	}
}

// summary returns the first sentence of a doc comment on one line, ending in
// a period, or "" for an empty doc.
func summary(doc string) string {
	para, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(doc, "\r\n", "\n")), "\n\n")
	s := strings.Join(strings.Fields(para), " ")
	if s == "" {
		return ""
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}

var durationUnits = []struct {
	d    time.Duration
	name string
}{
	{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"},
	{time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}, {time.Nanosecond, "Nanosecond"},
}

// durationCode renders d readably: 0, time.Second, 30 * time.Second,
// 1500 * time.Millisecond (the largest unit that divides d).
func durationCode(d time.Duration) jen.Code {
	if d == 0 {
		return jen.Lit(0)
	}
	for _, u := range durationUnits {
		if d%u.d != 0 {
			continue
		}
		n := int64(d / u.d)
		switch n {
		case 1:
			return jen.Qual("time", u.name)
		case -1:
			return jen.Op("-").Qual("time", u.name)
		}
		return jen.Lit(int(n)).Op("*").Qual("time", u.name)
	}
	return jen.Lit(int(d)) // not reached: every duration is a whole number of nanoseconds
}

// upperFirst returns s with its first letter upper-cased.
func upperFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}
