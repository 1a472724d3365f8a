package analyzer

import (
	"fmt"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
)

// Severity says whether a diagnostic blocks generation.
type Severity int

// The severities of diagnostics.
const (
	Error Severity = iota
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in the module's source, at an absolute position.
// A diagnostic about a whole package has Line 0 and the package folder as Filename.
type Diagnostic struct {
	Pos      token.Position
	Severity Severity
	Message  string
}

// Format renders the diagnostic as "path/file.go:12:3: error: message", with the
// path relative to relTo when it lies below it (slash-separated), else cleaned.
func (d Diagnostic) Format(relTo string) string {
	name := d.Pos.Filename
	if relTo != "" && name != "" {
		if rel, err := filepath.Rel(relTo, name); err == nil {
			name = rel
		}
	}
	name = filepath.ToSlash(filepath.Clean(name))
	var b strings.Builder
	b.WriteString(name)
	if d.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Pos.Line)
		if d.Pos.Column > 0 {
			fmt.Fprintf(&b, ":%d", d.Pos.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	b.WriteString(d.Message)
	return b.String()
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

func sortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Pos.Filename != b.Pos.Filename {
			return a.Pos.Filename < b.Pos.Filename
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		if a.Message != b.Message {
			return a.Message < b.Message
		}
		return a.Severity < b.Severity
	})
}

// dedupDiagnostics drops exact repeats from a sorted list (go list and the type
// checker may report the same error twice).
func dedupDiagnostics(ds []Diagnostic) []Diagnostic {
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// collector gathers diagnostics.
type collector struct {
	diags []Diagnostic
}

func (c *collector) errorf(pos token.Position, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: pos, Severity: Error, Message: fmt.Sprintf(format, args...)})
}

func (c *collector) warnf(pos token.Position, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: pos, Severity: Warning, Message: fmt.Sprintf(format, args...)})
}
